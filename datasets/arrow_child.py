"""The child process of ``store._sqlite_read_many``: run SQLite queries through ADBC, write Arrow IPC files.

Run as a script (``python -P datasets/arrow_child.py <database> <jobs.json>``), never imported by the
dashboard: the ADBC driver bundles its own SQLite, which must not share a process with the pool's
connections (see store._sqlite_read_many). ``jobs.json`` holds ``[[sql, output path], ...]``.
"""

import json
import sys


def main(database: str, jobs_file: str) -> None:
    import adbc_driver_sqlite.dbapi as adbc
    import pyarrow as pa

    with open(jobs_file, encoding="utf-8") as fh:
        jobs = json.load(fh)
    conn = adbc.connect(database)
    for sql, path in jobs:
        cur = conn.cursor()
        cur.execute(sql)
        reader = cur.fetch_record_batch()
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
        cur.close()
    conn.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
