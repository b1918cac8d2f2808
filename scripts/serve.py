"""Run the dashboard: ``python scripts/serve.py [streamlit options]`` (scripts/start.sh calls it).

The same as ``streamlit run dashboard.py``, with two additions: the heavy modules are imported before the
first visitor arrives, and Streamlit's automatic page list of the ``pages/`` directory (raw file names)
is switched off from the start. dashboard.py hides that list itself on its first run
(``_hide_the_file_list``); this also covers a deep link that is a fresh server's very first request.
"""

from __future__ import annotations

import importlib
import os
import sys

from streamlit.runtime.pages_manager import PagesManager
from streamlit.web.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Imported before the server starts (the app runs in this process), so that the first visitor does not
# wait for them: several seconds on a busy 2-core machine.
WARM_MODULES = ("polars", "altair", "sqlalchemy", "pydantic", "metrics.service", "metrics.overview", "metrics.comparison", "metrics.charts",
                "metrics.drill", "metrics.exports", "datasets.admin", "pages._session", "datasets.quality")


def run(args: list[str]) -> int:
    PagesManager.uses_pages_directory = False
    os.chdir(ROOT)
    sys.path.insert(0, ROOT)
    for name in WARM_MODULES:
        importlib.import_module(name)
    sys.argv = ["streamlit", "run", "dashboard.py", *args]
    return main()


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
