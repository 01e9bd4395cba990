"""A pg8000 connection that sends each statement in one round trip.

pg8000 (1.31, the version pinned in requirements) runs every parameterised statement through the
extended protocol in three round trips: Parse+Sync, then Describe+Bind, then Execute+Sync, each waiting
for the server's answer before the next. It sends a transaction's "begin" as a query of its own, and its
commit is one more such three-trip statement. An inbound webhook (begin, one statement, commit) so made
seven round trips to the database; on loopback each costs a wake-up of the server and of this process.

The protocol allows all of a statement's messages to go at once, with one Sync at the end: the server
answers them in order and, after an error, skips to the Sync, so the replies are read in one pass. And
pg8000's Cursor asks for "begin" immediately before the statement that needs it, so the begin can travel
with that statement. Here: begin + statement in one round trip, every further statement in one, commit in
one. The same webhook makes two; and one, since its statement is the whole of its transaction
(`statement_is_transaction`: sent without "begin", committed by PostgreSQL as it completes).

With `prepared` (DATABASE_PREPARED_STATEMENTS, on unless the database is reached through RDS Proxy), each
statement text is also prepared on its connection the first time it runs (Parse of a named statement, in
the same round trip as its first execution) and then only bound and executed: PostgreSQL parses and plans
the inbound webhook's statement once per connection instead of once per request (measured: its store and
commit took 0.75 ms prepared, 1.34 ms not). Named statements are session state, which RDS Proxy answers by
pinning the client's connection to one database connection (multiplexing lost): behind the proxy they
stay off.

The rest is pg8000's own: the same parameter conversion, the same replies handled by its code. Two things
are safer than before: parameters are converted and encoded before any byte is written, so a value the
driver cannot send (an integer beyond bigint, a string that cannot be encoded) fails with the connection
still in step; and when a pipelined "begin" and statement both answer, every reply up to each
ReadyForQuery is read before an error is raised.
"""

from __future__ import annotations

from typing import Any

from pg8000.converters import make_params
from pg8000.core import NULL_BYTE, SYNC_MSG, Context, _flush, _write
from pg8000.legacy import Connection

_BEGIN = "begin transaction"  # exactly what pg8000's Cursor.execute sends before a transaction's first statement
# Statement texts prepared per connection at most: the service has a few dozen; past the cap, unnamed.
MAX_PREPARED = 256


class PipelinedConnection(Connection):
    _begin_pending = False
    # Set by the engine (execution option `own_transaction`) just before a statement that is the whole of
    # its transaction: when it is the transaction's first, its "begin" is not sent and PostgreSQL runs it in
    # an implicit transaction, committed as it completes (rolled back if it fails), and the commit that
    # follows has nothing to send. One round trip for begin, statement and commit. Read (and cleared) by the
    # next statement whatever becomes of it; inside a transaction already begun it changes nothing.
    statement_is_transaction = False

    def __init__(self, *args: Any, prepared: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prepared_statements: dict[str, tuple[bytes, Any, Any]] | None = {} if prepared else None
        self._statement_names = 0

    def execute_simple(self, statement: str) -> Any:
        if statement == _BEGIN:
            # Cursor.execute calls us for "begin" and, in the same call, for its statement: send both together.
            self._begin_pending = True
            return Context(statement)
        begin = self._write_pending_begin(self._take_statement_is_transaction())
        context = Context(statement)
        self.send_QUERY(statement)
        _flush(self._sock)
        self._read_replies(begin, context)
        return context

    def execute_unnamed(self, statement: str, vals: Any = (), oids: Any = (), stream: Any = None) -> Any:
        alone = self._take_statement_is_transaction()  # taken first: a failure below must not leave it set
        if stream is not None:  # COPY: the server waits for our data mid-statement; pg8000's own sequence
            begin = self._write_pending_begin()
            if begin is not None:
                _flush(self._sock)
                self._read_replies(begin)
            return super().execute_unnamed(statement, vals=vals, oids=oids, stream=stream)
        params = make_params(self.py_types, vals)
        for value in params:  # fail here, with nothing written, rather than halfway through the Bind
            if value is not None:
                value.encode(self._client_encoding)
        prepared = self._prepared(statement, oids)
        begin = self._write_pending_begin(alone)
        if prepared is not None:  # parsed, planned and described on this connection before: bind and run
            name, columns, input_funcs = prepared
            context = Context(statement, columns=columns, input_funcs=input_funcs)
        else:
            name = self._new_statement_name(oids)
            context = Context(statement)
            self.send_PARSE(name, statement, oids)
            self.send_DESCRIBE_STATEMENT(name)
        self.send_BIND(name, params)
        self.send_EXECUTE()
        _write(self._sock, SYNC_MSG)
        _flush(self._sock)
        self._read_replies(begin, context)
        if prepared is None and name != NULL_BYTE and self.prepared_statements is not None:
            self.prepared_statements[statement] = (name, context.columns, context.input_funcs)
        return context

    def _prepared(self, statement: str, oids: Any) -> tuple[bytes, Any, Any] | None:
        if self.prepared_statements is None or oids:
            return None
        return self.prepared_statements.get(statement)

    def _new_statement_name(self, oids: Any) -> bytes:
        """A name for the statement to keep on this connection, or the unnamed statement (NULL_BYTE). Only
        a statement that succeeds is remembered; one that fails leaves at most an unused name behind, and
        names count toward the cap whatever became of them."""
        if self.prepared_statements is None or oids or self._statement_names >= MAX_PREPARED:
            return NULL_BYTE
        self._statement_names += 1
        return f"messaging_{self._statement_names}".encode("ascii") + NULL_BYTE

    def commit(self) -> None:
        # Nothing open (the transaction's only statement committed with its Sync): nothing to send.
        if not self._in_transaction and not self._begin_pending:
            return
        super().commit()

    def rollback(self) -> None:
        # A begin still pending (its statement failed before being sent) opened nothing: forget it.
        self._begin_pending = False
        self.statement_is_transaction = False
        super().rollback()

    def _take_statement_is_transaction(self) -> bool:
        alone, self.statement_is_transaction = self.statement_is_transaction, False
        return alone

    def _write_pending_begin(self, alone: bool = False) -> Context | None:
        """Write the transaction's "begin" if it is still to be sent; not when the statement about to go is
        `alone`, the whole of its transaction: PostgreSQL then runs it in an implicit transaction."""
        if not self._begin_pending:
            return None
        self._begin_pending = False
        if alone:
            return None
        self.send_QUERY(_BEGIN)
        return Context(_BEGIN)

    def _read_replies(self, *contexts: Context | None) -> None:
        """Read each exchange through its ReadyForQuery, then raise the first error the server reported:
        stopping at the first error would leave the next exchange's replies unread on the socket."""
        first_error: BaseException | None = None
        for context in contexts:
            if context is None:
                continue
            try:
                self.handle_messages(context)
            except BaseException as error:
                if error is not context.error:  # not the server's answer (the network, a reader): stop
                    raise
                first_error = first_error or error
        if first_error is not None:
            raise first_error


def connect(*args: Any, prepared: bool = False, **kwargs: Any) -> PipelinedConnection:
    """pg8000.connect's signature, our connection class (SQLAlchemy's do_connect hook calls this)."""
    return PipelinedConnection(*args, prepared=prepared, **kwargs)
