"""One screen per module; the app imports them lazily so the first screen appears fast."""
