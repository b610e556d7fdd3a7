"""The report as a file: one self-contained HTML page, or Markdown with its figures beside it."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from pneumobench.report.document import Report
from pneumobench.report.figures import Figure, Section, Table
from pneumobench.text import markdown_table

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;
color:#1d2330;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #d5d9e0;padding:.25rem .5rem;text-align:right}
th{background:#f2f4f7}td:nth-child(2),td:nth-child(4){text-align:left}
tr.champion{background:#e8f6ea;font-weight:600}
tr.failed{background:#fdecea;color:#8a1c12}tr.reference{color:#777;font-style:italic}
figure{margin:1rem 0}figure img{max-width:100%;border:1px solid #eee}
figure.half{display:inline-block;width:49%;margin:.5rem 0;vertical-align:top}
figcaption,.legend,.note{color:#555;font-size:.85rem}
section.block td{text-align:left}section.block td.num{text-align:right}
"""


def to_html(report: Report) -> str:
    """One self-contained HTML page: figures embedded as PNG data URIs."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>pneumobench report: {e(report.experiment)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>pneumobench report: {e(report.experiment)}</h1>",
        f'<p class="note">Ranked by {e(report.metric)} on the held-out test set. Tracking: '
        f"<code>{e(report.tracking_uri)}</code>.</p>",
        "<h2>Leaderboard</h2>",
        "<h3>1. Discrimination on test (read off each model's test curves)</h3>",
        _html_table(report.headers, report.cells, champion_first=True),
        f'<p class="legend">{e(report.legend)}</p>',
        "<h3>2. The deployed operating point (threshold chosen on validation)</h3>",
        _html_table(report.deployed_headers, report.deployed_cells, flag_column=True),
        f'<p class="legend">{e(report.deployed_legend)}</p>',
        *(f'<p class="note"><strong>{e(n)}</strong></p>' for n in report.store_notes),
        "<h2>Data</h2>",
        _html_table(*_dict_rows(report.data_rows))
        if report.data_rows
        else "<p>no data summary</p>",
        f'<p class="note">{e(report.leak_note)}</p>',
    ]
    for section in report.sections:
        parts.append(_html_section(section))
    current_section = None
    for fig in report.figures:
        section = _section(fig.name)
        if section != current_section:
            parts.append(f"<h2>{e(section)}</h2>")
            current_section = section
        half = ' class="half"' if section == "Hyperparameter search" else ""
        parts.append(_html_figure(fig, half))
    parts.append("<h2>Environment</h2>")
    parts.append(_html_table(["", ""], [[k, v] for k, v in report.environment.items()]))
    if report.notes:
        parts.append("<h2>Notes</h2><ul>")
        parts.extend(f"<li>{e(n)}</li>" for n in report.notes)
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _html_figure(fig: Figure, css: str = "") -> str:
    e = html.escape
    data = base64.b64encode(fig.png).decode()
    return (
        f'<figure{css} data-plot="{e(fig.name)}"><img alt="{e(fig.title)}" '
        f'src="data:image/png;base64,{data}"><figcaption>{e(fig.title)}'
        + (f". {e(fig.caption)}" if fig.caption else "")
        + "</figcaption></figure>"
    )


def _html_section(section: Section) -> str:
    e = html.escape
    slug = section.title.lower().replace(" ", "-")
    out = [f'<section class="block"><h2 id="{e(slug)}">{e(section.title)}</h2>']
    if section.intro:
        out.append(f'<p class="note">{e(section.intro)}</p>')
    for block in section.blocks:
        if isinstance(block, Table):
            out.append(f"<h3>{e(block.title)}</h3>")
            out.append(_html_table(block.headers, block.cells, flag_column=True))
            if block.caption:
                out.append(f'<p class="legend">{e(block.caption)}</p>')
        else:
            out.append(_html_figure(block))
    out.append("</section>")
    return "\n".join(out)


def _markdown_section(section: Section, image_dir: Path, link_prefix: str) -> list[str]:
    lines = ["", f"## {section.title}", ""]
    if section.intro:
        lines += [section.intro, ""]
    for block in section.blocks:
        if isinstance(block, Table):
            lines += [f"### {block.title}", "", markdown_table(block.headers, block.cells), ""]
            if block.caption:
                lines += [block.caption, ""]
        else:
            (image_dir / f"{block.name}.png").write_bytes(block.png)
            lines += [
                f"### {block.title}",
                "",
                f"![{block.title}]({link_prefix}{block.name}.png)",
                "",
            ]
            if block.caption:
                lines += [block.caption, ""]
    return lines


def _section(plot: str) -> str:
    if plot.startswith(("history_", "importances_")):
        return "Hyperparameter search"
    return {
        "roc_pr": "ROC and precision-recall",
        "confusion_matrices": "Confusion matrices",
        "validation_curves": "Training curves",
    }.get(plot, "Figures")


def _dict_rows(rows: list[dict[str, str]]) -> tuple[list[str], list[list[str]]]:
    headers = list(dict.fromkeys(k for row in rows for k in row))
    return headers, [[str(row.get(h, "")) for h in headers] for row in rows]


def _html_table(
    headers: list[str],
    cells: list[list[str]],
    champion_first: bool = False,
    flag_column: bool = False,
) -> str:
    e = html.escape
    out = ["<table><thead><tr>", *(f"<th>{e(h)}</th>" for h in headers), "</tr></thead><tbody>"]
    for i, row in enumerate(cells):
        css = ' class="champion"' if champion_first and i == 0 and row and row[0] == "1" else ""
        if champion_first and row and row[0] == "" and row[1].startswith("chance"):
            css = ' class="reference"'
        if flag_column and row and row[-1] == "did not hold":
            css = ' class="failed"'
        out.append(f"<tr{css}>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def to_markdown(report: Report, image_dir: Path, link_prefix: str) -> str:
    """Markdown for a README: figures written as PNG files into ``image_dir``."""
    image_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# pneumobench report: {report.experiment}",
        "",
        f"Ranked by {report.metric} on the held-out test set.",
        "",
        "### 1. Discrimination on test (read off each model's test curves)",
        "",
        markdown_table(report.headers, report.cells),
        "",
        report.legend,
        "",
        "### 2. The deployed operating point (threshold chosen on validation)",
        "",
        markdown_table(report.deployed_headers, report.deployed_cells),
        "",
        report.deployed_legend,
        "",
        *[line for note in report.store_notes for line in (f"**{note}**", "")],
        "## Data",
        "",
    ]
    if report.data_rows:
        lines.append(markdown_table(*_dict_rows(report.data_rows)))
    lines += ["", report.leak_note]
    for section in report.sections:
        lines += _markdown_section(section, image_dir, link_prefix)
    for fig in report.figures:
        (image_dir / f"{fig.name}.png").write_bytes(fig.png)
        lines += ["", f"### {fig.title}", "", f"![{fig.title}]({link_prefix}{fig.name}.png)"]
        if fig.caption:
            lines += ["", fig.caption]
    lines += [
        "",
        "## Environment",
        "",
        markdown_table(["", ""], [list(kv) for kv in report.environment.items()]),
    ]
    if report.notes:
        lines += ["", "## Notes", "", *(f"- {n}" for n in report.notes)]
    return "\n".join(lines) + "\n"


def write_report(report: Report, out: Path) -> list[Path]:
    """Write HTML (``.html``) or Markdown (``.md``); the paths written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".md":
        image_dir = out.parent / f"{out.stem}_files"
        out.write_text(to_markdown(report, image_dir, f"{image_dir.name}/"))
        return [out, *sorted(image_dir.glob("*.png"))]
    out.write_text(to_html(report))
    return [out]
