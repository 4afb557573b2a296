from layerkit.redact import has_credentials, redact_text, redact_url


def test_redact_url_hides_user_and_password_and_keeps_host_and_path() -> None:
    assert redact_url("https://alice:s3cret@pkgs.example.com:8443/simple/") == (
        "https://***@pkgs.example.com:8443/simple/"
    )
    assert (
        redact_url("https://token@pkgs.example.com/simple") == "https://***@pkgs.example.com/simple"
    )
    assert redact_url("https://pypi.org/simple") == "https://pypi.org/simple"
    assert redact_url("./wheels") == "./wheels"


def test_redact_text_hides_every_url_in_free_text() -> None:
    text = (
        "error: Failed to fetch: `http://u:p%40ss@127.0.0.1:8080/simple/x/`\n"
        "  Caused by: 401 at https://tok@h.example/x 'git+https://a:b@g/x.git'"
    )
    out = redact_text(text)
    assert "p%40ss" not in out
    assert "tok@" not in out
    assert "a:b" not in out
    assert "http://***@127.0.0.1:8080/simple/x/" in out
    assert "git+https://***@g/x.git" in out


def test_has_credentials() -> None:
    assert has_credentials("https://u:p@h/simple")
    assert not has_credentials("https://h/simple")
