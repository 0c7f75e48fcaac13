"""Input data sets shared by the end-to-end tests."""

from __future__ import annotations

import csv
import io

PEOPLE_CSV = (
    "id,name,email,amount,score,created_at,country,note\n"
    "1,Alice,alice@example.com,10.50,7,2024-01-01T10:00:00Z,FR,hello\n"
    "2,Bob,bob@example.com,-3,0,2024-02-15T12:30:00Z,US,plain\n"
    '3,Émilie,emilie@example.com,100,12,2024-03-20T08:15:30.500Z,FR,"quoted, comma"\n'
    '4,Zoë 🚀,zoe@example.com,0,3,2024-04-01T00:00:00+02:00,JP,"multi\nline"\n'
    '5,李雷,li@example.com,42,5,2023-12-31T23:59:59Z,CN,"say ""hi"""\n'
)


def people_rows() -> list[dict]:
    return list(csv.DictReader(io.StringIO(PEOPLE_CSV, newline="")))
