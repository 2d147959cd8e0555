"""`serve`'s settings from BEACON_* variables and a config file (beacon.json or --config), below
the command line — seen from outside: what the server does, what `beacon config` prints, and the
one-line errors for a bad file."""
import json
import os
import subprocess
import urllib.request

from conftest import _beacon_bin, beacon_server

TIMEOUT = 30


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEACON_")}
    env.update(extra)
    return env


def beacon(*args, cwd, env):
    return subprocess.run([str(_beacon_bin()), *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=TIMEOUT)


def status_of(server, host):
    request = urllib.request.Request(server.base_url, headers={"Host": host})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        return opener.open(request, timeout=10).status
    except urllib.error.HTTPError as error:
        return error.code


def test_file_environment_and_command_line_in_that_order(tmp_path):
    (tmp_path / "beacon.json").write_text(json.dumps({
        "allow-host": ["from-file.test"], "heartbeat": 7, "quiet": True, "history": 50}))
    env = clean_env(BEACON_ALLOW_HOST="env-one.test,env-two.test", BEACON_NOT_AN_OPTION="ignored")
    with beacon_server(tmp_path, env=env, cwd=tmp_path) as server:
        # The environment's list replaced the file's; the file's other settings hold.
        assert status_of(server, "env-two.test") == 200
        assert status_of(server, "from-file.test") == 403
        assert "info" not in server.log().split("--- beacon stderr ---")[1], "quiet from the file was not applied"
    with beacon_server(tmp_path, name="cli", extra_args=["--allow-host", "cli.test"], env=env, cwd=tmp_path) as server:
        assert status_of(server, "cli.test") == 200
        assert status_of(server, "env-one.test") == 403

    shown = beacon("config", cwd=tmp_path, env=clean_env(BEACON_TOKEN="s3cret-token",
                                                         BEACON_REDIS_URL="redis://user:pa55@127.0.0.1:6379/0"))
    assert shown.returncode == 0, shown.stderr
    lines = {line.split()[0]: line for line in shown.stdout.splitlines()}
    assert "7" in lines["heartbeat"] and "(beacon.json)" in lines["heartbeat"]
    assert "(default)" in lines["port"] and "8080" in lines["port"]
    assert "<redacted>" in lines["token"] and "BEACON_TOKEN" in lines["token"]
    assert "pa55" not in shown.stdout and "s3cret" not in shown.stdout
    assert "redis://<redacted>@127.0.0.1:6379/0" in lines["redis"] and "BEACON_REDIS_URL" in lines["redis"]

    # swift-configuration's access log: every setting read, secrets redacted.
    log = tmp_path / "access.log"
    logged = beacon("config", cwd=tmp_path, env=clean_env(BEACON_TOKEN="s3cret-token", CONFIG_ACCESS_LOG_FILE=str(log)))
    assert logged.returncode == 0, logged.stderr
    text = log.read_text()
    assert "heartbeat" in text and "BEACON_TOKEN" in text and "s3cret" not in text, text[:2000]


def test_config_option_names_the_file(tmp_path):
    settings = tmp_path / "elsewhere.json"
    settings.write_text(json.dumps({"allow-host": ["named.test"]}))
    with beacon_server(tmp_path, extra_args=["--config", str(settings)], env=clean_env()) as server:
        assert status_of(server, "named.test") == 200


def test_bad_settings_are_one_line_naming_key_and_place(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    cases = [
        ({"prot": 8081}, {}, 'beacon.json: "prot" is not an option (did you mean "port"?)'),
        ({"debounce": "abc"}, {}, 'beacon.json: "debounce": The value \'abc\' is invalid'),
        ({"quiet": "maybe"}, {}, 'beacon.json: "quiet" must be true or false'),
        ({"allow-host": 5}, {}, 'beacon.json: "allow-host" must be a list of strings'),
        ({}, {"BEACON_MAX_BODY": "-1"}, "BEACON_MAX_BODY: --max-body"),
        ("[1, 2]", {}, "beacon.json: not a JSON object"),
        ("{not json", {}, "beacon.json: not a JSON object"),
    ]
    for content, env, message in cases:
        (tmp_path / "beacon.json").write_text(content if isinstance(content, str) else json.dumps(content))
        result = beacon("serve", str(site), "--port", "0", cwd=tmp_path, env=clean_env(**env))
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 1, f"{content} {env}: {result.stderr}"
        assert len(lines) == 1 and message in lines[0], f"{content} {env}: {result.stderr!r}"
    missing = beacon("serve", str(site), "--config", str(tmp_path / "nope.json"), cwd=tmp_path, env=clean_env())
    assert missing.returncode == 1 and "cannot read the config file" in missing.stderr
    # The token's value never appears in an error about it.
    (tmp_path / "beacon.json").write_text(json.dumps({"token": ["s3cret-in-list"]}))
    result = beacon("serve", str(site), "--port", "0", cwd=tmp_path, env=clean_env())
    assert result.returncode == 1 and "s3cret" not in result.stderr
