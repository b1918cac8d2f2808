"""The one place that changes Streamlit's own browser-side texts, and the session cookie.

Streamlit has no setting for the language of its built-in texts (the file uploader's "Drag and drop
files here", "Browse files", "Upload", "50MB per file", the table toolbar's "Search"/"Fullscreen", an
empty table's "empty", "Running..."/"Stop"). ``install`` injects a small script once per page view
that rewrites exactly those texts (text nodes and the title/aria-label/placeholder attributes) to
Chinese as they appear. The table below is the whole list; tests/test_browser.py checks the result
for every role on every page.

``set_cookie``/``clear_cookie`` write the session cookie: the random id of a server-side session
(pages/_session.py, datasets/access/sessions.py), HttpOnly when the server runs dashboard.py's st.App routes
(pages/_cookie_server.py); the page reads it back through ``st.context.cookies`` after a reload.
"""

from __future__ import annotations

import json
import re

import streamlit as st

from pages import _cookie_server

# Exact texts (after trimming) -> Chinese.
EXACT: dict[str, str] = {
    "Drag and drop files here": "将文件拖放到此处",
    "Drag and drop file here": "将文件拖放到此处",
    "Drag and drop a file here": "将文件拖放到此处",
    "Browse files": "选择文件",
    "Upload": "选择文件",
    "Upload files": "选择文件",
    "Remove file": "移除文件",
    "Delete": "删除",
    "Search": "搜索",
    "Fullscreen": "全屏",
    "Close fullscreen": "退出全屏",
    "Exit fullscreen": "退出全屏",
    "Show/hide columns": "显示/隐藏列",
    "Download as CSV": "下载 CSV",
    "Download as PNG": "下载图片",
    "Show data": "查看数据",
    "Show chart": "查看图表",
    "Copy Vega-Lite spec": "复制图表定义",
    "Toggle fullscreen": "全屏",
    "Clear selection": "清除选择",
    "empty": "无数据",
    "Sort ascending": "升序排列",
    "Sort descending": "降序排列",
    "Format": "格式",
    "Autosize": "自动列宽",
    "Pin column": "固定列",
    "Unpin column": "取消固定",
    "Hide column": "隐藏列",
    "Running...": "正在运行…",
    "Stop": "停止",
    "Press Enter to apply": "按回车键确认",
    "Press Enter to submit form": "按回车键提交",
    "Press Enter to add": "按回车键添加",
    "No results": "无匹配项",
    "No options to select": "没有可选项",
    "No options to select.": "没有可选项",
    "Choose an option": "请选择",
    "Choose options": "请选择",
    "Clear all": "全部清除",
    "Clear value": "清除",
    "Select all": "全选",
    "Show password text": "显示密码",
    "Hide password text": "隐藏密码",
    "Collapse sidebar": "收起侧边栏",
    "Expand sidebar": "展开侧边栏",
    "View more": "展开更多",
    "View less": "收起",
    "Close": "关闭",
    "Copy to clipboard": "复制",
    "Connecting": "正在连接",
    "Please wait...": "请稍候…",
    "Page not found": "页面不存在",
    "The page that you have requested does not seem to exist. Running the app's main page.":
        "您访问的页面不存在，已打开首页。",
    "Show more": "展开",
    "Show less": "收起",
}

# Texts with a variable part: (regular expression, replacement with $1…).
PATTERNS: list[tuple[str, str]] = [
    (r"^(\d+(?:\.\d+)?\s*[KMG]?B) per file$", "单个文件不超过 $1"),
    (r"^Limit (\d+(?:\.\d+)?\s*[KMG]?B) per file(.*)$", "单个文件不超过 $1$2"),
    (r"^View (\d+) more$", "再显示 $1 项"),
    (r"^Press Enter to (.+)$", "按回车键确认"),
    # The uploader's refusal of a file over its limit (a tooltip); no number: the 数据上传 uploader's
    # limit is rounded up for the browser's units (upload.uploader_limit_mb), the page states the real one.
    (r"^File must be (.+) or smaller\.$", "文件超过单个文件大小上限，请按月份或区县拆分后分别上传"),
]

_SCRIPT = """
<script>
(function () {
  const doc = window.parent && window.parent.document ? window.parent.document : document;
  const win = doc.defaultView || window;
  if (win.__zhTexts) { return; }
  win.__zhTexts = true;
  const EXACT = __EXACT__;
  const PATTERNS = __PATTERNS__.map(([p, r]) => [new RegExp(p), r]);
  const ATTRS = ["title", "aria-label", "placeholder"];
  function tr(text) {
    if (!text) { return null; }
    const core = text.trim();
    if (!core || /[\\u4e00-\\u9fff]/.test(core)) { return null; }
    if (Object.prototype.hasOwnProperty.call(EXACT, core)) { return text.replace(core, EXACT[core]); }
    for (const [re, rep] of PATTERNS) {
      if (re.test(core)) { return text.replace(core, core.replace(re, rep)); }
    }
    return null;
  }
  function fixNode(node) {
    if (node.nodeType === 3) {
      const out = tr(node.nodeValue);
      if (out !== null && out !== node.nodeValue) { node.nodeValue = out; }
      return;
    }
    if (node.nodeType !== 1) { return; }
    for (const a of ATTRS) {
      if (node.hasAttribute(a)) {
        const out = tr(node.getAttribute(a));
        if (out !== null && out !== node.getAttribute(a)) { node.setAttribute(a, out); }
      }
    }
    const walker = doc.createTreeWalker(node, 5);  // elements and text
    let n = walker.nextNode();
    while (n) {
      if (n.nodeType === 3) { fixNode(n); } else {
        for (const a of ATTRS) {
          if (n.hasAttribute(a)) {
            const out = tr(n.getAttribute(a));
            if (out !== null && out !== n.getAttribute(a)) { n.setAttribute(a, out); }
          }
        }
      }
      n = walker.nextNode();
    }
  }
  fixNode(doc.body);
  new win.MutationObserver((records) => {
    for (const r of records) {
      if (r.type === "characterData") { fixNode(r.target); }
      else if (r.type === "attributes") { fixNode(r.target.nodeType === 1 ? r.target : r.target.parentNode); }
      else { r.addedNodes.forEach(fixNode); }
    }
  }).observe(doc.body, {subtree: true, childList: true, characterData: true, attributes: true,
                        attributeFilter: ATTRS});
  // On a phone the open menu covers the page: close it once a page is chosen from it.
  doc.addEventListener("click", (e) => {
    if (win.innerWidth > 640 || !e.target.closest || !e.target.closest('[data-testid="stSidebarNavLink"]')) { return; }
    win.setTimeout(() => {
      const bar = doc.querySelector('[data-testid="stSidebar"]');
      const close = doc.querySelector('[data-testid="stSidebarCollapseButton"] button');
      if (bar && close && bar.getAttribute("data-collapsed") === "false") { close.click(); }
    }, 200);
  }, true);
})();
</script>
"""

# The injected element takes no room; table and chart toolbars offer no download, data view or spec
# copy (the pages' own download buttons are role-checked and audited; .streamlit/config.toml also
# disables the CSV download).
_CSS = """
<style>
.element-container:has(> .stHtml > script:only-child), .stElementContainer:has(> .stHtml script:only-child),
div[data-testid="stElementContainer"]:has(iframe[title="st.iframe"][height="0"]) { display: none; }
[class*="st-key-emptytable_"] [data-testid="stDataFrame"] { display: none; }
[class*="st-key-up_files_"] [data-testid="stFileUploaderDropzoneInstructions"] { display: none; }
[data-testid="stElementToolbar"] button[aria-label="Download as CSV"],
[data-testid="stElementToolbar"] button[aria-label="下载 CSV"],
[data-testid="stElementToolbar"] button[aria-label="Download as PNG"],
[data-testid="stElementToolbar"] button[aria-label="下载图片"],
[data-testid="stElementToolbar"] button[aria-label="Copy Vega-Lite spec"],
[data-testid="stElementToolbar"] button[aria-label="复制图表定义"],
[data-testid="stElementToolbar"] button[aria-label="Show data"],
[data-testid="stElementToolbar"] button[aria-label="查看数据"] { display: none !important; }
/* Headings break between words only, never inside a date ("2026年↵11月"); a word wider than the screen
   still wraps rather than overflow. */
h1, h2, h3 { word-break: keep-all; overflow-wrap: anywhere; }
/* The hint above a table wider than a phone (pages/_shared.table): only on a narrow screen. */
@media (min-width: 641px) { [class*="st-key-widehint_"] { display: none; } }
[class*="st-key-scrollbox_"] { overflow-x: auto; }
</style>
"""


def script() -> str:
    """The HTML that installs the translations (exposed for tests)."""
    return _SCRIPT.replace("__EXACT__", json.dumps(EXACT, ensure_ascii=False)).replace(
        "__PATTERNS__", json.dumps(PATTERNS, ensure_ascii=False))


def translate(text: str) -> str | None:
    """What the script turns ``text`` into (None: left alone) — the same rules, in Python, for tests."""
    core = text.strip()
    if not core or re.search(r"[\u4e00-\u9fff]", core):
        return None
    if core in EXACT:
        return text.replace(core, EXACT[core])
    for pattern, replacement in PATTERNS:
        if re.search(pattern, core):
            return text.replace(core, re.sub(pattern, replacement.replace("$", "\\"), core))
    return None


def install() -> None:
    """Inject the translations and the CSS into the current page (once per run; the script guards itself)."""
    st.html(_CSS)
    st.html(script(), unsafe_allow_javascript=True)


COOKIE = _cookie_server.COOKIE
_TOKEN = re.compile(r"^[A-Za-z0-9_-]*$")  # secrets.token_urlsafe's alphabet


def _https() -> bool:
    return (st.context.url or "").startswith("https")


def _script_cookie(value: str, max_age: int) -> str:
    """The fallback without the st.App routes (AppTest): the cookie written by JavaScript (cannot be HttpOnly)."""
    if not _TOKEN.match(value):
        raise ValueError("cookie value has characters outside the token alphabet")
    secure = "; Secure" if _https() else ""
    return (f"<script>(window.parent.document || document).cookie = "
            f"'{COOKIE}={value}; Path=/; Max-Age={int(max_age)}; SameSite=Strict{secure}';</script>")


def _route() -> str:
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    return ("/" + base if base else "") + _cookie_server.PATH


def _post_script(path: str, body: str = "") -> str:
    """A same-origin POST (with the header the routes require) from the page."""
    if not _TOKEN.match(body):
        raise ValueError("body has characters outside the token alphabet")
    return (f"<script>fetch({json.dumps(path)}, {{method: 'POST', credentials: 'same-origin', cache: 'no-store', "
            f"headers: {{'{_cookie_server.HEADER}': '1'}}, body: {json.dumps(body)}}});</script>")


def set_cookie(token: str, max_age: int) -> None:
    """Put the session's random token into the browser (read back by st.context.cookies on reload).

    Under the st.App (``streamlit run dashboard.py``) the server sets it, HttpOnly, through a one-time code; otherwise JavaScript does."""
    if _cookie_server.installed:
        code = _cookie_server.handoff(token, max_age, _https())
        st.html(_post_script(_route(), code), unsafe_allow_javascript=True)
    else:
        st.html(_script_cookie(token, max_age), unsafe_allow_javascript=True)


def clear_cookie() -> None:
    if _cookie_server.installed:
        st.html(_post_script(_route() + "/end"), unsafe_allow_javascript=True)
    else:
        st.html(_script_cookie("", 0), unsafe_allow_javascript=True)


def cookie() -> str | None:
    """The session token cookie sent when this session's page was loaded."""
    try:
        value = st.context.cookies.get(COOKIE)
    except Exception:  # AppTest and bare script runs have no request context
        return None
    return value if isinstance(value, str) else None


def client_info() -> dict[str, str]:
    """The browser's user agent and address as the server saw them (for the sessions list of 账号管理)."""
    try:
        agent = st.context.headers.get("User-Agent") or ""
        address = st.context.ip_address or ""
    except Exception:  # AppTest and bare script runs have no request context
        return {"user_agent": "", "client": ""}
    return {"user_agent": str(agent), "client": str(address)}
