"""Showing results from records only: terminal tables, report.html with plots, summary.md, results.json
and the verdict."""
