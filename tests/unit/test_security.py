import socket

import pytest

from app.security import (
    InsecureBindError,
    PortInUse,
    check_bind,
    is_loopback,
    load_credentials,
    port_is_free,
    serving_port,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"])
def test_loopback_addresses(host):
    assert is_loopback(host)
    check_bind(host, [])


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "my-laptop.lan"])
def test_other_addresses_need_a_password(host):
    assert not is_loopback(host)
    with pytest.raises(InsecureBindError, match="--auth"):
        check_bind(host, [])
    check_bind(host, [("ana", "s3cret")])


def test_credentials_from_flag_and_file(tmp_path):
    file = tmp_path / "users"
    file.write_text("# team\nbo:pw:with:colons\n\ncy:x\n")
    assert load_credentials("ana:s3cret", file) == [
        ("ana", "s3cret"),
        ("bo", "pw:with:colons"),
        ("cy", "x"),
    ]
    with pytest.raises(InsecureBindError, match="user:password"):
        load_credentials("no-colon", None)
    with pytest.raises(InsecureBindError, match="cannot read"):
        load_credentials(None, tmp_path / "missing")


def test_a_taken_port_is_replaced_only_when_the_user_did_not_choose_it():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert not port_is_free("127.0.0.1", port)
        assert serving_port("127.0.0.1", port, chosen=False) is None  # the next free one
        with pytest.raises(PortInUse, match=f"port {port} is in use"):
            serving_port("127.0.0.1", port, chosen=True)
    assert port_is_free("127.0.0.1", port)
    assert serving_port("127.0.0.1", port, chosen=True) == port
    assert serving_port("127.0.0.1", 0, chosen=True) is None  # 0: any free port
