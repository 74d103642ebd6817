"""The gateway: the one service callers talk to.

It records a run in storage, asks the generator for each output and pipes
every media file into storage as its chunks arrive, streaming what happens
back to the caller. It holds no media itself beyond a few chunks in flight.
"""
