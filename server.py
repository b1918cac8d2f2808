"""The dashboard as an ``st.App``: ``streamlit run server.py`` (scripts/start.sh and scripts/serve.py do).

The same app as ``streamlit run dashboard.py`` plus two HTTP routes that set and remove the session
cookie with ``HttpOnly`` (pages/_cookie_server.py): a Streamlit script cannot set response headers
itself. Started as ``streamlit run dashboard.py`` the dashboard still works; its reload cookie is then
written by JavaScript and cannot be HttpOnly (docs/deploy.md).
"""

import streamlit as st
from streamlit import config
from streamlit.runtime.pages_manager import PagesManager

from pages import _cookie_server

# The pages/ directory is not a page list: dashboard.py's st.navigation builds the menu (see scripts/serve.py).
PagesManager.uses_pages_directory = False
_cookie_server.installed = True

app = st.App("dashboard.py", routes=_cookie_server.routes(config.get_option("server.baseUrlPath") or ""))
