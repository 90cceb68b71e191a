"""Car charging by target (rule 17): the owner's targets and modes, the charging sessions
seen at each wallbox, the habits learned from them, and the plan handed to the engine."""
