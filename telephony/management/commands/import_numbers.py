"""`manage.py import_numbers stock.csv`: load numbers into the platform's stock.

Every row is checked (a valid E.164 number; country, type, NPA/NXX consistent with it); bad rows are
listed by line and skipped, good ones go in, one transaction per batch. Exit status 1 if any row was bad.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from telephony.services.numbers import CSV_COLUMNS, stock_import_csv

ERRORS_SHOWN = 200


class Command(BaseCommand):
    help = f"Import stock numbers from a CSV with a header row. Columns: {', '.join(CSV_COLUMNS)} (number required)."

    def add_arguments(self, parser):
        parser.add_argument("path", help="CSV file; - for standard input.")
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(self, *args, path: str, batch_size: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            if path == "-":
                report = stock_import_csv(file=sys.stdin, batch_size=batch_size)
            else:
                with open(path, newline="", encoding="utf-8-sig") as file:
                    report = stock_import_csv(file=file, batch_size=batch_size)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise CommandError(f"{path} is not UTF-8 text: {exc}") from exc

        for line, number in report.duplicates[:ERRORS_SHOWN]:
            self.stdout.write(f"line {line}: {number} is already in stock, skipped")
        for line, message in report.errors[:ERRORS_SHOWN]:
            self.stderr.write(f"line {line}: {message}")
        hidden = max(0, len(report.errors) - ERRORS_SHOWN) + max(0, len(report.duplicates) - ERRORS_SHOWN)
        if hidden:
            self.stderr.write(f"... and {hidden} more lines not shown")
        self.stdout.write(report.summary())
        if not report.ok:
            raise CommandError(f"{len(report.errors)} rows were rejected; the others were imported.", returncode=1)
