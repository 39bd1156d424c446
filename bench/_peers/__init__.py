"""Servers and clients of the peer systems `bench.peers` compares with our bridge.

One module per system; each has ``serve(argv)`` (run in a child process by
``python -m bench._peers serve KIND ...``) and ``open_client(kind, options)``,
a context manager that starts that server (or cluster), connects, yields a
`common.Client` and stops everything by PID when it exits. The measuring loop
is `common.measure`; ``python -m bench._peers client KIND`` runs it in a fresh
process and prints the samples as one JSON line, so no system's imports
(gevent, Ray, oslo) ever share a process with another's.
"""
