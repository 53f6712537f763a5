"""Takes: videos turned into ARKit curves as queued jobs.

``store`` the SQLite database, ``service`` the component (queue, job process, retention),
``child`` the job process (a child Python process at a lower priority), ``worker`` one
job's work (in that process), ``livelink`` the Live Link Face CSV, ``recorder`` a take from
the camera. The routes are faced.api.jobs.
"""
