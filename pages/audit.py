"""审计日志 (administrators): sign-ins, imports, rollbacks, settings and account changes; CSV download."""

import streamlit as st

from datasets.access import accounts
from datasets.operations import admin as actions
from pages import _auth_ui as ui
from pages import _catalog as catalog
from pages import _shared as shared

LIMITS = (200, 500, 2000, 10000)

engine, app, admin = ui.gate(catalog.PAGE_AUDIT)
assert admin is not None
accounts.require_admin(admin)

st.title("审计日志")
st.caption("记录登录、退出、导入、回滚、设置修改、下载和账号管理等操作，只增不改。最新的记录在前。")
c1, c2, c3 = st.columns(3)
action = c1.selectbox("操作", ["", *accounts.ACTION_LABELS], key="audit_action",
                      format_func=lambda a: accounts.ACTION_LABELS.get(a, "全部操作"))
name = c2.selectbox("账号", ["", *accounts.audit_user_names(engine)], key="audit_user",
                    format_func=lambda n: n or "全部账号")
limit = c3.selectbox("显示条数", LIMITS, index=1, key="audit_limit", format_func=lambda n: f"最近 {n} 条")

entries = accounts.audit_entries(engine, limit, action or None, name or None)
st.caption(f"共 {entries.height} 条")
shared.table(entries, key="audit_table", max_rows=12)


def _downloaded() -> None:
    accounts.audit(engine, admin.username, "download", f"下载审计日志 CSV（{entries.height} 条）", catalog.PAGE_AUDIT)


st.download_button("下载 CSV", actions.audit_csv(entries), file_name="审计日志.csv", mime="text/csv",
                   key="audit_csv", on_click=_downloaded, icon=":material/download:")
