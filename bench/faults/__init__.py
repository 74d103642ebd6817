"""Pieces of the fault benchmark: a MinIO that can be killed and brought back,
a gateway run that can be watched and interrupted, and the checks that say
whether a fault left anything behind (running prompts, partial objects,
unfinished multipart uploads, duplicates)."""
