"""The decision engine: facts -> criteria (Kleene) -> dosing -> determination. Pure: no I/O."""
