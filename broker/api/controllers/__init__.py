"""One Controller per resource; handlers decode, call one service function, encode."""
