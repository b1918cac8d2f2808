"""The ADBC child process of ``store.py``: SQLite reads to Arrow IPC files, and bulk ingests.

Run as a script, never imported by the dashboard: the ADBC driver bundles its own SQLite, which must not
share a process with the pool's connections (see store.sqlite_read_many).

- ``python -P datasets/storage/arrow_child.py <database> <jobs.json>``: ``jobs.json`` holds
  ``[[sql, output path], ...]``; each query's result is written to its path (``store.sqlite_read_many``).
- ``python -P datasets/storage/arrow_child.py ingest <database> <table> <ipc file> ...``: create each table in a
  scratch database from its Arrow IPC file, in one transaction (``store.staged_records``).
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


def ingest(database: str, pairs: list[str]) -> None:
    import adbc_driver_sqlite.dbapi as adbc
    import pyarrow as pa

    conn = adbc.connect(database)
    cur = conn.cursor()
    for table, path in zip(pairs[0::2], pairs[1::2], strict=True):
        with pa.memory_map(path) as source:
            cur.adbc_ingest(table, pa.ipc.open_file(source).read_all(), mode="create")
    conn.commit()
    conn.close()


if __name__ == "__main__":
    if sys.argv[1] == "ingest":
        ingest(sys.argv[2], sys.argv[3:])
    else:
        main(sys.argv[1], sys.argv[2])
