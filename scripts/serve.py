"""Run the dashboard: ``python scripts/serve.py [streamlit options]`` (scripts/start.sh calls it).

The same as ``streamlit run server.py`` (dashboard.py as an ``st.App`` with the HttpOnly session
cookie routes) except that Streamlit's automatic page list of the ``pages/`` directory is switched off
before the first visitor arrives: that list (raw file names in English) would otherwise show in the
sidebar until dashboard.py's own st.navigation replaces it.
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
    sys.argv = ["streamlit", "run", "server.py", *args]
    return main()


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
