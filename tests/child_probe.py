"""A child for tests/test_hostile_templates.py's runner test (datasets/common/limited_child.py): what stdin asks."""

import os
import sys
import time

if __name__ == "__main__":
    what = sys.stdin.buffer.read()
    if what == b"sleep":
        time.sleep(60)
    elif what == b"allocate":
        hog = bytearray(1024 * 1024 * 1024)
    elif what == b"crash":
        os.abort()
    sys.stdout.buffer.write(what)
