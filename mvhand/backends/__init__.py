"""2D model backends behind small Protocols (see ``base``); heavy imports stay inside them."""
