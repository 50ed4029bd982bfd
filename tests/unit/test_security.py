import pytest

from app.security import InsecureBindError, check_bind, is_loopback, load_credentials

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
