"""数据上传 (staff): upload monthly exports, see the validation report (on screen and as .xlsx),
import on confirmation, withdraw an import (撤销导入), roll back to any version, download import templates.

Imports and rollbacks are made as the signed-in account: datasets/intake/upload.py checks its district
scope itself (a file with rows of another district is refused), the page only offers its districts."""

from collections.abc import Callable

import streamlit as st

from datasets.access import accounts
from datasets.domain.schema import KINDS
from datasets.intake import ingest, report, templates, upload
from datasets.operations import admin as actions
from datasets.storage import quality, store
from pages import _auth_ui as ui
from pages import _catalog as catalog
from pages import _shared as shared

AUTO, NO_DISTRICT = "（按表头自动识别）", "（文件中已有区县列）"
CHECKS, FLASH, UPLOADER = "_upload_checks", "_upload_flash", "_upload_round"
ACTIONS = "_upload_action_round"  # bumped after every withdrawal or rollback

engine, app, user = ui.gate(catalog.PAGE_UPLOAD)
assert user is not None  # the gate admits 工作人员 only
st.title("数据上传")
st.caption(
    f"上传各区县每月导出的办件明细、事项清单、好差评和 12345 热线工单（.xlsx、.xls、.csv，以及制表符分隔的 .tsv、.txt，单个文件不超过 "
    f"{app.upload_max_mb} MB，可一次选择多个）。文件先校验、不入库；确认后才导入。"
    "同一区县同一月份再次导入会生成新版本，旧版本保留，可随时回滚；导入也可以撤销。"
)
for level, message in st.session_state.pop(FLASH, []):
    getattr(st, level)(shared.plain(message))

scope = actions.upload_districts(engine, user)
st.markdown(f"操作人：{ui.who(user)}　负责区县：{shared.plain('、'.join(scope) or '（未分配）')}")
if not scope:
    st.warning("当前账号尚未分配负责的区县，不能上传数据。请联系管理员在“账号管理”页分配区县。")
c1, c2, c3 = st.columns(3)
kind = c1.selectbox("数据类型", [AUTO, *KINDS], key="up_kind",
                    format_func=lambda k: k if k == AUTO else KINDS[k].label)
district = c2.selectbox("所属区县（文件中没有区县列时使用）", [NO_DISTRICT, *scope], key="up_district")
period = c3.text_input("适用月份（事项清单必填，年-月）", key="up_period", placeholder="例如 2024-05").strip()

round_no = st.session_state.setdefault(UPLOADER, 0)
files = st.file_uploader("选择文件", type=["xlsx", "xls", "csv", "tsv", "txt"], accept_multiple_files=True,
                         max_upload_size=upload.uploader_limit_mb(app.upload_max_mb), key=f"up_files_{round_no}", disabled=not scope) or []

options = (None if kind == AUTO else kind, None if district == NO_DISTRICT else district, period or None,
           user.username, user.districts)
cache: dict = st.session_state.setdefault(CHECKS, {})
checks = []
pending = [f for f in files if (f.file_id, options) not in cache]
if pending:
    progress = st.progress(0.0, text="正在读取和校验…")
    for n, f in enumerate(pending, start=1):
        with st.status(f"正在读取和校验：{shared.plain(f.name)}", expanded=False) as status:
            check = cache[(f.file_id, options)] = upload.check_file(
                engine, f.getvalue(), f.name, kind=options[0], district=options[1], period=options[2], user=user,
            )
            if not check.accepted:  # audited as the command line does
                upload.audit_rejection(engine, check)
            status.update(label=f"校验完成：{shared.plain(f.name)}", state="complete")
        progress.progress(n / len(pending), text=f"已校验 {n}/{len(pending)} 个文件")
    progress.empty()
checks = [cache[(f.file_id, options)] for f in files]

if checks:
    st.subheader("校验报告")
for n, check in enumerate(checks):
    headline = shared.plain(check.headline())
    if not check.accepted:
        st.error(headline)
    elif check.already_imported:
        st.info(headline)
    else:
        st.success(headline)
    if check.problems:
        with st.expander(f"问题清单（错误 {check.error_count} 处，警告 {check.warning_count} 处）", expanded=not check.accepted):
            shared.table(report.rule_counts(check.problems, check.counts), key=f"rules_{n}")
            shared.table(check.problems_frame(), key=f"problems_{n}")
            st.download_button("下载校验报告（.xlsx）", check.report_bytes(),
                               file_name=f"校验报告_{check.file_name.rsplit('.', 1)[0]}.xlsx",
                               mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                               key=f"report_{n}")

ready = [c for c in checks if c.accepted and not c.already_imported]
if checks:
    if st.button(f"确认导入（{len(ready)} 个文件）", type="primary", disabled=not ready, key="up_import"):
        results = []
        bar = st.progress(0.0, text="正在导入…")
        for n, check in enumerate(ready, start=1):
            with st.status(f"正在导入：{shared.plain(check.file_name)}") as status:
                try:
                    result = upload.store_checked(engine, check)
                except (upload.UploadRejected, ValueError, accounts.PermissionDenied) as exc:
                    results.append(("error", f"{check.file_name}：导入失败，{exc}"))
                    status.update(state="error")
                else:
                    results.append(("success", upload.result_line(check, result)))
                    if result.notice:  # stored, but its batch file was not written: said, not hidden
                        results.append(("warning", result.notice))
                    status.update(label=f"已导入：{shared.plain(check.file_name)}", state="complete")
            bar.progress(n / len(ready), text=f"已导入 {n}/{len(ready)} 个文件")
        st.session_state[FLASH] = results
        st.session_state[CHECKS] = {}
        st.session_state[UPLOADER] = round_no + 1
        st.session_state[ACTIONS] = st.session_state.get(ACTIONS, 0) + 1  # withdrawal/rollback pickers afresh
        st.rerun()

st.subheader("导入历史、撤销与回滚")
h1, h2 = st.columns(2)
hist_kind = h1.selectbox("数据类型", ["", *KINDS], key="hist_kind", format_func=lambda k: KINDS[k].label if k else "全部")
seen = actions.history_districts(engine, user)
hist_district = h2.selectbox("区县", ["", *seen], key="hist_district", format_func=lambda d: d or "全部")
history = store.batch_history(engine, hist_kind or None, hist_district or None, districts=seen)
shared.table(quality.batch_table(history), key="batch_history", max_rows=8)
# Every action starts a new round of the pickers and confirmations below: nothing stays ticked or
# chosen for a second click to act on without asking again.
action_round = st.session_state.setdefault(ACTIONS, 0)


def _done(message: str) -> None:
    st.session_state[FLASH] = [("success", message)]
    st.session_state[ACTIONS] = action_round + 1
    st.rerun()


def _version_action(title: str, candidates, prefix: str, pick: str, placeholder: str, confirm: str,
                    act: Callable[[int], dict], done_text: Callable[[dict], str], refused: str, empty: str) -> None:
    """One version action (撤销导入, 回滚): pick a batch, confirm, act; nothing preselected or ticked."""
    with st.container(border=True):
        st.markdown(f"**{title}**")
        if not candidates.height:
            st.caption(empty)
            return
        rows = {r["id"]: r for r in candidates.iter_rows(named=True)}
        chosen = st.selectbox(pick, list(rows), index=None, placeholder=placeholder, key=f"{prefix}_target_{action_round}",
                              format_func=lambda i: quality.batch_label(rows[i]))
        sure = st.checkbox(confirm, key=f"{prefix}_confirm_{action_round}")
        if st.button(title, disabled=not (sure and chosen is not None), key=f"{prefix}_go_{action_round}"):
            try:
                done = act(int(chosen))
            except (ValueError, accounts.PermissionDenied) as exc:
                st.error(shared.plain(f"{refused}：{exc}"))
            else:
                _done(done_text(done))


def _withdrawn(done: dict) -> str:
    back = f"，恢复为第 {done['restored_version']} 版" if done["restored_version"] is not None else "，该月份暂无在用数据"
    return (f"已撤销{KINDS[done['kind']].label} {done['district']} {done['period']} 第 {done['version']} 版"
            f"{back}（可在下方回滚恢复）")


_version_action(
    "撤销导入", ingest.withdraw_candidates(history, scope), "wd", "撤销以下在用版本", "选择要撤销的导入",
    "我确认：所选导入将不再计入指标，该区县该月份恢复为导入前的版本（导入记录保留，标为“已撤销”，可通过回滚恢复）",
    lambda batch: ingest.withdraw(engine, batch, user, page=catalog.PAGE_UPLOAD), _withdrawn, "未撤销",
    "负责区县没有可撤销的在用导入。")
_version_action(
    "回滚", quality.rollback_candidates(history, scope), "rb", "恢复到以下版本", "选择要恢复的版本",
    "我确认：该区县该数据类型该月份的数据将恢复为所选版本（当前版本保留，可再次回滚）",
    lambda batch: upload.rollback(engine, batch, user, page=catalog.PAGE_UPLOAD),
    lambda done: f"已将{KINDS[done['kind']].label} {done['district']} {done['period']} 恢复为第 {done['version']} 版",
    "未回滚", "没有可回滚的旧版本（同一区县同一月份重新导入或撤销后，负责区县的旧版本会出现在这里）。")

st.subheader("导入模板")
st.caption("模板第一行为表头，另附字段说明；按模板整理的文件可直接上传。")
template_columns = st.columns(len(KINDS))
for col, (name, k) in zip(template_columns, KINDS.items(), strict=True):
    col.download_button(f"{k.label}模板", shared.template(name), file_name=templates.file_name(name),
                        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", key=f"tpl_{name}")
