"""The machinery every bulk upsert shares: item parsing, a staged batch of rows with late
rejections, the one bulk write, and its retry when a concurrent request inserted the same key."""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone

from accounts.models import Account

from ._items import Item

MAX_ITEMS = 1000
REQUIRED = "This field is required to create a new record."


class TooManyItems(ValueError):
    pass


@dataclass
class BulkResult:
    created: int = 0
    updated: int = 0
    rejected: list[dict] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)


class _Batch:
    """One attempt at writing the clean items: staged rows, late rejections, counts."""

    def __init__(self, items: list[Item]):
        self.items = items
        self.errors = {
            i.index: {k: list(v) for k, v in i.errors.items()} for i in items if i.errors
        }
        self.new: list[Model] = []
        self.changed: dict[int, Model] = {}
        self.fields: set[str] = set()
        self.rows: dict[int, Model] = {}
        self.updated = 0
        self.claimed: dict[object, int] = {}

    def ready(self) -> list[Item]:
        return [i for i in self.items if i.index not in self.errors]

    def reject(self, item: Item, name: str, reason: str) -> None:
        self.errors.setdefault(item.index, {}).setdefault(name, []).append(reason)

    def rejected(self, item: Item) -> bool:
        return item.index in self.errors

    def claim(self, item: Item, key: object, name: str) -> None:
        """Two items of one request may not target the same record: the later one is rejected."""
        first = self.claimed.setdefault(key, item.index)
        if first != item.index:
            self.reject(item, name, f"Duplicates item {first} of this request.")

    def require(self, item: Item, values: dict, names: list[str]) -> None:
        already = self.errors.get(item.index, {})
        for name in names:
            if values.get(name) in (None, "") and name not in already:
                self.reject(item, name, REQUIRED)

    def create(self, item: Item, row: Model) -> None:
        self.new.append(row)
        self.rows[item.index] = row

    def update(self, item: Item, row: Model, values: dict) -> None:
        self.updated += 1
        self.rows[item.index] = row
        changed = [name for name, value in values.items() if getattr(row, name) != value]
        for name in changed:
            setattr(row, name, values[name])
        if changed:
            self.changed[row.pk] = row
            self.fields.update(changed)

    def save(self, model: type[Model]) -> None:
        model.objects.bulk_create(self.new, batch_size=500)
        if self.changed:
            rows = list(self.changed.values())
            if any(f.name == "updated_at" for f in model._meta.fields):
                now = timezone.now()
                for row in rows:
                    row.updated_at = now
                self.fields.add("updated_at")
            model.objects.bulk_update(rows, sorted(self.fields), batch_size=500)

    def result(self) -> BulkResult:
        rejected = [
            {"index": i.index, "external_id": i.external_id, "errors": self.errors[i.index]}
            for i in self.items
            if i.index in self.errors
        ]
        return BulkResult(
            created=len(self.new),
            updated=self.updated,
            rejected=rejected,
            ids=[self.rows[i].pk for i in sorted(self.rows)],
        )


def _parse(items: list, clean: Callable[[Item], None], allowed: set[str]) -> list[Item]:
    if len(items) > MAX_ITEMS:
        raise TooManyItems(f"At most {MAX_ITEMS} items per request; got {len(items)}.")
    parsed = []
    for index, raw in enumerate(items):
        item = Item(index, raw)
        if item.check_shape(allowed):
            clean(item)
        parsed.append(item)
    return parsed


def _write_with_retry(write: Callable[[], BulkResult]) -> BulkResult:
    """A concurrent request may insert the same new key between our lookup and our insert; the
    unique index then refuses ours. Running again sees that row and updates it instead."""
    try:
        with transaction.atomic():
            return write()
    except IntegrityError:
        with transaction.atomic():
            return write()


def _account_pks(items: list[Item]) -> dict[str, int]:
    keys = {i.refs["account_id"] for i in items if i.refs.get("account_id")}
    return dict(Account.objects.filter(external_id__in=keys).values_list("external_id", "pk"))


def _resolve_account(batch: _Batch, item: Item, values: dict, pks: dict[str, int]) -> None:
    if "account_id" not in item.refs:
        return
    pk = pks.get(item.refs["account_id"])
    if pk is None:
        batch.reject(
            item, "account_id", f"No account with external_id '{item.refs['account_id']}'."
        )
    else:
        values["account_id"] = pk
