"""What every simulator shares, so each one holds only its provider's API.

A simulator is an aiohttp application that speaks one provider's wire protocol; around that it
needs the same scaffolding as the others: fault knobs editable in process and over
``POST /sim/faults`` (:mod:`.faults`), a log of the API requests it answered
(:mod:`.control`), binding a port and reporting the URL, and a command line that runs it until
SIGTERM/SIGINT (:mod:`.serving`). One copy here keeps those rules the same in every simulator.
"""
