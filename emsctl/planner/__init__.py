"""The day-ahead planner (rule 19): from the PV forecast, a learned house-load profile and the
battery, which 15-minute slots of the next day and a half each heat-pump load should run in.

Pure like the engine: no I/O, no wall clock. `make_plan` builds a Plan, `word` tells the
engine what the plan says of one load now; `LoadProfile` learns the house's consumption.
"""

from emsctl.planner.battery import Flows, simulate, spare
from emsctl.planner.greedy import make_plan
from emsctl.planner.profile import LoadProfile
from emsctl.planner.types import Block, FlexLoad, Plan, PlanInput
from emsctl.planner.words import word

__all__ = [
    "Block",
    "FlexLoad",
    "Flows",
    "LoadProfile",
    "Plan",
    "PlanInput",
    "make_plan",
    "simulate",
    "spare",
    "word",
]
