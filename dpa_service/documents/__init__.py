"""Documents: the PDF render pipeline (off the event loop) and the service seal."""
