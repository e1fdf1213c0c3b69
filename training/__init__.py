"""Steps that build the kiosk's data and artefacts; each is a module run with `python -m training.<step>`."""
