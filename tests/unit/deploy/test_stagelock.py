"""The stage lock against an in-memory S3: one holder, conditional removal, named holders."""

from __future__ import annotations

import datetime as dt

import pytest

from layerkit.deploy.stagelock import acquire, force_unlock, held, read_lock, release
from layerkit.errors import DeployError

from .fakes import FakeS3, client_error
from .helpers import STAGE

NOW = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.timezone.utc)


def test_one_holder_at_a_time_and_the_refusal_names_it():
    s3 = FakeS3()
    lock = acquire(s3, STAGE, "alice@host pid 1", "deploy", NOW)
    assert read_lock(s3, STAGE) == lock
    with pytest.raises(DeployError) as info:
        acquire(s3, STAGE, "bob", "rollback", NOW)
    assert "locked by alice@host pid 1 (deploy) since 2026-11-01T12:00:00+00:00" in str(info.value)
    release(s3, STAGE, lock)
    assert read_lock(s3, STAGE) is None


def test_a_lock_taken_again_after_a_forced_unlock_is_not_removed_by_the_old_holder():
    s3 = FakeS3()
    old = acquire(s3, STAGE, "old", "deploy", NOW)
    assert force_unlock(s3, STAGE) == old
    new = acquire(s3, STAGE, "new", "deploy", NOW + dt.timedelta(seconds=1))
    with pytest.raises(Exception, match="PreconditionFailed"):
        release(s3, STAGE, old)
    assert read_lock(s3, STAGE) == new
    assert force_unlock(s3, STAGE) == new
    assert force_unlock(s3, STAGE) is None


def test_held_releases_on_success_error_and_interrupt():
    s3 = FakeS3()
    with held(s3, STAGE, acquire(s3, STAGE, "t", "deploy", NOW)):
        pass
    assert read_lock(s3, STAGE) is None
    with pytest.raises(DeployError), held(s3, STAGE, acquire(s3, STAGE, "t", "deploy", NOW)):
        raise DeployError("step failed")
    assert read_lock(s3, STAGE) is None
    with pytest.raises(KeyboardInterrupt), held(s3, STAGE, acquire(s3, STAGE, "t", "deploy", NOW)):
        raise KeyboardInterrupt
    assert read_lock(s3, STAGE) is None


def test_a_lock_that_cannot_be_removed_is_reported_with_the_way_out():
    s3 = FakeS3()
    lock = acquire(s3, STAGE, "t", "deploy", NOW)

    def failing_delete(**_):
        raise client_error("AccessDenied", "DeleteObject", 403)

    s3.delete_object = failing_delete  # type: ignore[method-assign]
    with pytest.raises(DeployError) as info, held(s3, STAGE, lock):
        pass
    assert "the deploy succeeded, but" in str(info.value)
    assert "--force-unlock" in str(info.value)


def test_an_unwritable_bucket_is_one_paragraph():
    s3 = FakeS3()

    def failing_put(**_):
        raise client_error("NoSuchBucket", "PutObject", 404)

    s3.put_object = failing_put  # type: ignore[method-assign]
    with pytest.raises(DeployError, match="Check that the bucket exists"):
        acquire(s3, STAGE, "t", "deploy", NOW)
