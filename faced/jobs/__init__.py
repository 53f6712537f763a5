"""Takes: videos turned into ARKit curves as queued jobs.

``store`` the SQLite database, ``service`` the component (queue, job thread, retention),
``worker`` one job's work, ``livelink`` the Live Link Face CSV, ``recorder`` a take from the
camera. The routes are faced.api.jobs.
"""
