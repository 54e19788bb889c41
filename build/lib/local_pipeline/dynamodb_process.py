"""The embedded DynamoDB in a process of its own, so a local run uses both cores.

Against in-process moto, a burst's time goes mostly to DynamoDB: the fan-out's conditional claim, its batched
item writes and its completions cost ~1.6 ms of moto per sale, on the one core the rest of the run (the
simulated Firehose, the transform, Parquet, S3) also needs. Here moto's DynamoDB runs in a child process: a
DynamoDB client of the run sends each request, exactly as botocore serialised it, down a socket pair instead
of over HTTP, and the child answers it with moto's own DynamoDB request handler (the one moto's stubber and
moto_server hand DynamoDB's requests to). The fan-out's concurrent calls queue in the socket while the child
works through them, so DynamoDB and the rest of the pipeline run side by side, as they do in AWS.

Only DynamoDB moves: its calls are small (a claim is ~0.5 KB), while S3 would carry every Parquet object across.
"""

from __future__ import annotations

import base64
import functools
import itertools
import os
import resource
import socket
import subprocess
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders

__all__ = ["DynamoDBProcess", "DynamoDBProcessError", "child_environment"]

#: How long a request may wait for the child's answer before the run gives up on the child.
_ANSWER_TIMEOUT_SECONDS = 120.0
#: How many condition-expression parses the child remembers (a claim needs the same one twice in a row).
_REMEMBERED_PARSES = 8


#: Dummy credentials: nothing here signs for, or reaches, a real account.
_DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def child_environment(region: str) -> dict[str, str]:
    """Dummy credentials and the run's region: what a local run sets in its own environment and the child's."""
    return {**_DUMMY_CREDENTIALS, "AWS_DEFAULT_REGION": region}


class DynamoDBProcessError(RuntimeError):
    """The DynamoDB process stopped answering (it died, or a request outlived the timeout)."""


class _RawBody:
    """The streaming body botocore reads a response from (what moto's own stubber hands back)."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        if self._body:
            yield self._body
        self._body = b""

    def read(self, *_: Any) -> bytes:
        body, self._body = self._body, b""
        return body


class DynamoDBProcess:
    """A child process holding moto's DynamoDB backend; :meth:`attach` routes a client's requests to it.

    Requests from any number of threads are written to one pipe under a lock and answered in order; a reader
    thread hands each answer to the request waiting for it. ``environment`` is what the child needs to sign
    nothing and name the same account and region as the parent (dummy credentials, region).
    """

    def __init__(self, environment: dict[str, str]) -> None:
        # A fresh interpreter (``python -m`` this module), not a fork of a threaded parent nor multiprocessing's
        # spawn, which would re-import the parent's main script.
        parent, child = socket.socketpair()
        self._process = subprocess.Popen(  # noqa: S603 - this interpreter, this module, no shell
            [sys.executable, "-m", __name__, str(child.fileno())],
            env={**os.environ, **environment},
            pass_fds=(child.fileno(),),
            stdin=subprocess.DEVNULL,
        )
        child.close()
        self._conn = Connection(parent.detach())
        self._send_lock = threading.Lock()
        self._ids = itertools.count()
        self._waiting: dict[int, Future[Any]] = {}
        self._waiting_lock = threading.Lock()
        self._closed = False
        self._reader = threading.Thread(target=self._read_answers, name="embedded-dynamodb-reader", daemon=True)
        self._reader.start()
        #: The child's peak resident set (bytes), known once it has stopped.
        self.peak_rss_bytes: int | None = None

    def attach(self, client: Any) -> Any:
        """Route ``client``'s requests to the child instead of moto's in-process stubber; return the client.

        botocore calls every ``before-send`` handler (the first answer wins), so the in-process stubber is taken
        off this client: left on, it would run each request a second time against the parent's empty backend.
        """
        from moto.core.models import botocore_stubber  # noqa: PLC0415 - the stubber mock_aws installed here

        client.meta.events.unregister("before-send", botocore_stubber)
        client.meta.events.register_first("before-send.dynamodb", self._forward)
        return client

    def spill_sales_items(self, table: str, region: str, account: str, path: Path) -> int:
        """Append ``table``'s items to the JSONL file ``path`` and drop them from the child's memory."""
        moved: int = self._call(("spill", table, region, account, str(path)))
        return moved

    def spill_when_over(self, max_items: int, table: str, region: str, account: str, path: Path) -> None:
        """From now on, whenever ``table``'s items span more than ``max_items`` partition keys after a request (a
        count the table keeps, so checking costs nothing), the child moves them to ``path`` as
        :meth:`spill_sales_items` does (so a burst's memory does not grow while it drains)."""
        self._call(("spill_policy", max_items, table, region, account, str(path)))

    def close(self) -> None:
        """Stop the child, keeping its peak resident set in :attr:`peak_rss_bytes`."""
        if self._closed:
            return
        self._closed = True
        try:
            self.peak_rss_bytes = self._call(("stop",), timeout=10.0)
        except DynamoDBProcessError:
            self.peak_rss_bytes = None
        try:
            self._process.wait(timeout=10.0)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._conn.close()

    def _forward(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        body = request.body
        if hasattr(body, "read"):
            body = body.read()
        if isinstance(body, str):
            body = body.encode()
        headers = {key: value.decode() if isinstance(value, bytes) else value for key, value in request.headers.items()}
        status, answer_headers, answer = self._call(("request", request.method, request.url, headers, body or b""))
        http_headers = HTTPHeaders()
        for key, value in answer_headers.items():
            http_headers[key] = value
        return AWSResponse(request.url, status, http_headers, _RawBody(answer))

    def _call(self, message: tuple[Any, ...], timeout: float = _ANSWER_TIMEOUT_SECONDS) -> Any:
        if self._process.poll() is not None:
            raise DynamoDBProcessError("the embedded DynamoDB process has stopped")
        future: Future[Any] = Future()
        request_id = next(self._ids)
        with self._waiting_lock:
            self._waiting[request_id] = future
        try:
            with self._send_lock:
                self._conn.send((request_id, *message))
        except OSError as exc:  # the child went away between the check above and the send
            with self._waiting_lock:
                self._waiting.pop(request_id, None)
            raise DynamoDBProcessError("the embedded DynamoDB process has stopped") from exc
        try:
            return future.result(timeout=timeout)
        except TimeoutError as exc:
            raise DynamoDBProcessError(f"the embedded DynamoDB process gave no answer in {timeout:.0f} s") from exc

    def _read_answers(self) -> None:
        while True:
            try:
                request_id, ok, value = self._conn.recv()
            except (EOFError, OSError):
                error = DynamoDBProcessError("the embedded DynamoDB process has stopped")
                with self._waiting_lock:
                    waiting, self._waiting = self._waiting, {}
                for future in waiting.values():
                    future.set_exception(error)
                return
            with self._waiting_lock:
                future = self._waiting.pop(request_id)
            if ok:
                future.set_result(value)
            else:
                future.set_exception(DynamoDBProcessError(value))


def _serve(conn: Connection) -> None:  # pragma: no cover - runs in the child
    """The child: moto's in-process mock, answering the parent's requests in the order they arrive."""
    from moto import mock_aws  # noqa: PLC0415 - only the child imports moto's backends
    from moto.dynamodb.models.dynamo_type import Item  # noqa: PLC0415

    from local_pipeline.collector import fewer_collections  # noqa: PLC0415

    mock = mock_aws()
    mock.start()
    dispatch = _dynamodb_dispatch()
    policy: list[Any] = []  # [max_items, table, region, account, path] once the parent set one

    def set_policy(*args: Any) -> None:
        policy[:] = args

    handlers: dict[str, Callable[..., Any]] = {
        "request": lambda *args: _answer(dispatch, *args),
        "spill": _spill,
        "spill_policy": set_policy,
    }
    with fewer_collections():  # for the child's whole life: it only ever serves the run
        try:
            while True:
                try:
                    request_id, kind, *args = conn.recv()
                except (EOFError, OSError):
                    return
                if kind == "stop":
                    conn.send((request_id, True, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))
                    return
                try:
                    conn.send((request_id, True, handlers[kind](*args)))
                except Exception as exc:  # the parent raises it for the request that caused it
                    conn.send((request_id, False, f"{type(exc).__name__}: {exc}"))
                # moto's metaclass keeps every Item it ever made in this list (for moto_server's dashboard, which
                # this process has not): each claim, completion and item write would stay in memory for good.
                Item.instances_tracked.clear()  # type: ignore[attr-defined]
                if policy and kind == "request":
                    _spill_if_over(*policy)
        finally:
            mock.stop()


def _spill_if_over(max_items: int, table_name: str, region: str, account: str, path: str) -> None:  # pragma: no cover
    from moto.dynamodb.models import dynamodb_backends  # noqa: PLC0415

    if len(dynamodb_backends[account][region].get_table(table_name).items) > max_items:
        _spill(table_name, region, account, path)


def _dynamodb_dispatch() -> Callable[..., Any]:  # pragma: no cover - runs in the child
    """moto's DynamoDB request handler, with four costs of moto's generic request path taken out.

    Profiled over the default run (py-spy, child process), these were over half of the child's time, and none
    of them changes an answer:

    - moto's stubber matches every request's URL against every service's URL patterns, compiling each
      pattern again; every request here is DynamoDB's, so it goes straight to the handler moto maps
      DynamoDB's URL to (``moto.dynamodb.urls``);
    - each request lists the handler class's methods again (``inspect.getmembers``), a fixed list;
    - a conditional put parses its condition expression twice (once to check the expression's names, once
      to evaluate it), and the claim's expression is the same text every time: a parse is remembered for
      the exact (expression, names, values) it was given, and only the last few are kept;
    - building an item summed the sizes of all the attributes set so far at each attribute it set (for the
      400 KB limit), quadratic in the attributes: 0.46 ms of a 16-attribute sales item. A running total
      raises the same ItemSizeTooLarge at the same attribute (see :func:`_build_items_in_linear_time`).
    """
    import moto.core.responses as moto_responses  # noqa: PLC0415
    from moto.core.request import normalize_request  # noqa: PLC0415
    from moto.dynamodb.comparisons import ConditionExpressionParser  # noqa: PLC0415
    from moto.dynamodb.urls import url_paths  # noqa: PLC0415
    from werkzeug.exceptions import HTTPException  # noqa: PLC0415 - what moto.core.exceptions re-exports

    method_names = moto_responses.method_names_from_class  # type: ignore[attr-defined]
    moto_responses.method_names_from_class = functools.lru_cache(maxsize=None)(method_names)  # type: ignore[attr-defined]
    _remember_parses(ConditionExpressionParser)
    _build_items_in_linear_time()
    (handler,) = url_paths.values()

    def dispatch(request: AWSPreparedRequest) -> tuple[int, dict[str, Any], Any]:
        normalized = normalize_request(request)
        try:
            status, headers, body = handler(normalized, normalized.raw_url, normalized.headers)
        except HTTPException as exc:
            return int(exc.code or 500), dict(exc.get_headers() or []), exc.get_body()
        return status, headers, body

    return dispatch


def _remember_parses(parser_class: Any) -> None:  # pragma: no cover - runs in the child
    """Give ``parser_class.parse`` a small memory keyed by its exact inputs (see :func:`_dynamodb_dispatch`)."""
    parse = parser_class.parse
    remembered: OrderedDict[bytes, tuple[Any, list[str], list[str]]] = OrderedDict()

    def remembering_parse(self: Any) -> Any:
        try:
            key = orjson.dumps(
                [self.condition_expression, self.expression_attribute_names, self.expression_attribute_values],
                option=orjson.OPT_SORT_KEYS,
            )
        except TypeError:  # inputs JSON cannot key: parse as moto would
            return parse(self)
        known = remembered.get(key)
        if known is None:
            op = parse(self)
            remembered[key] = (op, list(self.expr_attr_names_found), list(self.expr_attr_values_found))
            if len(remembered) > _REMEMBERED_PARSES:
                remembered.popitem(last=False)
            return op
        op, names, values = known
        self.expr_attr_names_found.extend(names)
        self.expr_attr_values_found.extend(values)
        return op

    parser_class.parse = remembering_parse


#: sha256 (first 16 hex digits) of the source of ``Item.__init__`` and ``LimitedSizeDict.__setitem__`` in the
#: moto release :func:`_build_items_in_linear_time` was checked against (5.2.1); other source keeps moto's code.
_ITEM_SOURCES = ("d9c12b62cb921831", "d979580fdbe14f79")


def _build_items_in_linear_time() -> bool:  # pragma: no cover - runs in the child
    """Build new items with a running size total instead of moto's sum over every attribute at every attribute.

    moto's ``Item.__init__`` sets the attributes one by one on a ``LimitedSizeDict``, whose ``__setitem__``
    raises ``ItemSizeTooLarge`` when the sizes of the keys and values already there plus the new pair pass
    405,000 bytes. While an item is being built nothing else changes its values, so the running total of the
    pairs set so far is exactly that sum: the same check at each attribute, linear instead of quadratic.
    Only construction changes; later updates go through moto's ``__setitem__``. Applied only if moto's two
    functions are the source this was checked against (returns whether it was applied).
    """
    import hashlib  # noqa: PLC0415
    import inspect  # noqa: PLC0415

    from moto.dynamodb.exceptions import ItemSizeTooLarge  # noqa: PLC0415
    from moto.dynamodb.models import dynamo_type  # noqa: PLC0415
    from moto.dynamodb.models.utilities import bytesize  # noqa: PLC0415

    item_class, limited = dynamo_type.Item, dynamo_type.LimitedSizeDict
    sources = tuple(
        hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]
        for function in (item_class.__init__, limited.__setitem__)
    )
    if sources != _ITEM_SOURCES:
        return False
    dynamo = dynamo_type.DynamoType

    def init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        self.hash_key = hash_key
        self.range_key = range_key
        self.attrs = limited()
        total = 0
        for key, value in attrs.items():
            typed = dynamo(value)
            size = bytesize(key) + typed.size()
            if total + size > 405000:  # moto's limit, as LimitedSizeDict.__setitem__ applies it
                raise ItemSizeTooLarge
            dict.__setitem__(self.attrs, key, typed)
            total += size

    item_class.__init__ = init  # type: ignore[method-assign]
    return True


def _answer(
    dispatch: Callable[[AWSPreparedRequest], tuple[int, dict[str, Any], Any]],
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes,
) -> tuple[int, dict[str, str], bytes]:  # pragma: no cover - runs in the child
    http_headers = HTTPHeaders()
    for key, value in headers.items():
        http_headers[key] = value
    request = AWSPreparedRequest(method=method, url=url, headers=http_headers, body=body, stream_output=False)
    status, answer_headers, answer_body = dispatch(request)
    if isinstance(answer_body, str):
        answer_body = answer_body.encode()
    return status, {str(k): str(v) for k, v in answer_headers.items()}, answer_body


def _spill(table_name: str, region: str, account: str, path: str) -> int:  # pragma: no cover - runs in the child
    """Move ``table_name``'s items out of moto into ``path`` (see ``EmbeddedAws.spill_sales_items``)."""
    from moto.dynamodb.models import dynamodb_backends  # noqa: PLC0415
    from moto.dynamodb.models.dynamo_type import Item  # noqa: PLC0415

    table = dynamodb_backends[account][region].get_table(table_name)
    moved = 0
    # Plain JSONL: an item is mostly its embedding's base64, which gzip shrank by only a fifth, at ~0.12 ms an
    # item (0.25 s a spill of 2,000, with every request waiting behind it); a plain write takes a tenth of that.
    with Path(path).open("ab") as spill:
        for by_range in table.items.values():
            for item in by_range.values():
                spill.write(orjson.dumps(item.to_json()["Attributes"], default=_bytes_as_base64) + b"\n")
                moved += 1
    table.items.clear()
    Item.instances_tracked.clear()  # type: ignore[attr-defined]
    return moved


def _bytes_as_base64(value: Any) -> str:  # pragma: no cover - runs in the child
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"cannot serialise {type(value).__name__}")


if __name__ == "__main__":  # pragma: no cover - the child's entry point
    _serve(Connection(int(sys.argv[1])))
