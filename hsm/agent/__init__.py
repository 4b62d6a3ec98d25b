"""The code that runs where tasks run: on this machine and on SSH hosts and login nodes.

Standard library only, and Python 3.7 or newer: a host needs nothing but a Python 3.
hsm ships this package to a host in one way (`hsm.remote_agent`: a zip application,
content-addressed, copied once into the login's `~/.cache/hsm/`) and runs it in one way,
`python3 AGENT.pyz ACTION` with a JSON request on standard input and a JSON answer on
standard output (`main.py`). The local source calls the same actions in process.

    status.py    reading a task's status file, its mark, process identity, free disk
    runner.py    the detached runner that works through a source's queue
    slot.py      a task the runner started, and how it is stopped
    started.py   the runner's `started` record: which attempts began, in which process
    direct.py    tasks the runner starts itself, with what task.sh would give them
    gpus.py      the GPU ids a runner shares out among its tasks, and what nvidia-smi lists
    probe.py     what a poll learns from status files (runner sources and job arrays)
    project.py   describing a project copy (git state or file digests)
    actions.py   the actions a caller asks for: home, state, start, poll, cancel, health, statuses
    main.py      the command line of the agent
"""
