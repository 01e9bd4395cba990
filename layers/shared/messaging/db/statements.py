"""What every module of SQL statements shares."""


def compact(sql: str) -> str:
    """One line: the driver scans every statement character by character on each execution."""
    return " ".join(sql.split())
