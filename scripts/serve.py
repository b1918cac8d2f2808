"""Run the dashboard: ``python scripts/serve.py [streamlit options]`` (scripts/start.sh calls it).

The same as ``streamlit run dashboard.py`` (dashboard.py as an ``st.App`` with the HttpOnly session
cookie routes and no automatic page list, see the end of dashboard.py), with the heavy modules
imported before the server starts.
"""

from __future__ import annotations

import importlib
import os
import sys

from streamlit.web.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Imported before the server starts (the app runs in this process), so that the first visitor does not
# wait for them: several seconds on a busy 2-core machine.
WARM_MODULES = ("polars", "altair", "sqlalchemy", "pydantic", "metrics.service", "metrics.overview", "metrics.comparison", "metrics.charts",
                "metrics.drill", "metrics.exports", "datasets.operations.admin", "pages._session", "datasets.storage.quality")


def run(args: list[str]) -> int:
    os.chdir(ROOT)
    sys.path.insert(0, ROOT)
    for name in WARM_MODULES:
        importlib.import_module(name)
    sys.argv = ["streamlit", "run", "dashboard.py", *args]
    return main()


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
