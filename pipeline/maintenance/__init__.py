"""Maintenance: the context tasks run in, the tasks, the stuck-job reaper and
the registry the worker actor, the scheduler's jobs, the CLI and the admin
endpoints look tasks up in."""
