"""A conversion's new holder names itself in its lock file just after it takes the lock: a waiter that read the file
in between found no name, said "another conversion is under way" naming no process, and, having said it once, never
named the one it waited on."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import pytest

import engine.models.conversion_lock as conversion_lock
from engine.models.conversion_holder import Holder
from engine.models.conversion_lock import converting_into, lock_path


def test_a_waiter_reading_the_lock_before_its_holder_signs_it_names_the_holder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "models" / "m-diffusers"
    holding, read_unsigned, signed, leave = (threading.Event() for _ in range(4))
    real_sign, real_holder_of = conversion_lock.sign, conversion_lock.holder_of

    def sign_once_read(fd: int) -> None:  # the holder, between its lock and its name, until a waiter has read the file
        if not holding.is_set():
            holding.set()
            assert read_unsigned.wait(30)
            real_sign(fd)
            signed.set()
        else:
            real_sign(fd)

    def holder_of_then_sign(lock: Path) -> Holder | None:  # the waiter reads the file, then the holder signs it
        holder = real_holder_of(lock)
        if not read_unsigned.is_set():
            read_unsigned.set()
            assert signed.wait(30)
        return holder

    monkeypatch.setattr(conversion_lock, "sign", sign_once_read)
    monkeypatch.setattr(conversion_lock, "holder_of", holder_of_then_sign)
    said: list[Holder | None] = []
    told = threading.Event()

    def hold() -> None:
        with converting_into(folder):
            leave.wait(60)

    def wait() -> None:
        def waiting(holder: Holder | None) -> None:
            said.append(holder)
            told.set()
        with converting_into(folder, waiting):
            pass

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert holding.wait(30)
    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    try:
        assert told.wait(30)
        assert read_unsigned.is_set()  # the waiter did read the file before its name was in it
    finally:
        leave.set()
        holder.join(30)
        waiter.join(30)
    assert not waiter.is_alive()
    assert [holder.pid if holder else None for holder in said] == [os.getpid()]


def test_a_holder_that_cannot_be_named_from_here_is_still_waited_for_aloud(tmp_path: Path) -> None:
    """Another machine's holder (a shared disk) names a process not seen here: the waiter says it waits, naming none."""
    folder = tmp_path / "models" / "m-diffusers"
    lock = lock_path(folder)
    assert lock is not None
    lock.parent.mkdir(parents=True)
    lock.write_text("other-machine.4242-1", encoding="ascii")
    held = os.open(lock, os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)
    said: list[Holder | None] = []
    told = threading.Event()

    def waiting(holder: Holder | None) -> None:
        said.append(holder)
        told.set()

    def wait() -> None:
        with converting_into(folder, waiting):
            pass

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    try:
        assert told.wait(30)
    finally:
        os.close(held)
        waiter.join(30)
    assert not waiter.is_alive() and said == [None]
