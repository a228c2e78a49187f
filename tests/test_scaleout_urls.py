"""Issue 18: REDIS_URL / LOOP_QUEUE_URL may name a Redis Cluster or a Sentinel master; a
misconfiguration stops the process at start naming the variable."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis.cluster import RedisCluster

from loop import connection
from loop.errors import ConfigError
from loop.runtime import from_settings
from loop.settings import Settings
from tests.cluster_server import Cluster, SentinelSetup, namespaces_on_different_masters
from tests.redis_server import free_port, spawn_redis

BASE = {"LOOP_API_KEY": "k"}
CLUSTER = "redis+cluster://10.0.0.1:7000,10.0.0.2:7000"


@pytest.mark.parametrize(("env", "named", "says"), [
    ({"REDIS_URL": CLUSTER}, "LOOP_QUEUE_URL", "required"),
    ({"REDIS_URL": "redis://h:6379/0", "LOOP_QUEUE_URL": CLUSTER}, "LOOP_QUEUE_URL", "RQ needs one Redis"),
    ({"REDIS_URL": "redis+cluster://h"}, "REDIS_URL", "host:port"),
    ({"REDIS_URL": "redis+cluster://h:1/3", "LOOP_QUEUE_URL": "redis://q"}, "REDIS_URL", "database 0"),
    ({"REDIS_URL": "redis+sentinel://h:26379"}, "REDIS_URL", "master name"),
    ({"REDIS_URL": "memcached://h:1"}, "REDIS_URL", "scheme"),
    ({"LOOP_QUEUE_URL": "redis+sentinel://h:26379/m/x"}, "LOOP_QUEUE_URL", "master name"),
])
def test_a_misconfigured_redis_url_stops_the_process_naming_the_variable(
        env: dict[str, str], named: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({**BASE, **env})
    assert named in str(err.value) and says in str(err.value)


def test_urls_parse_into_nodes_master_name_db_and_credentials() -> None:
    sentinel = connection.parse("redis+sentinel://:s3cret@a:26379,b:26380/mymaster/2")
    assert (sentinel.kind, sentinel.nodes, sentinel.service, sentinel.db, sentinel.password) == (
        "sentinel", (("a", 26379), ("b", 26380)), "mymaster", 2, "s3cret")
    cluster = connection.parse("redis+cluster://u:p@a:7000,b:7001")
    assert (cluster.kind, cluster.nodes, cluster.username, cluster.password) == (
        "cluster", (("a", 7000), ("b", 7001)), "u", "p")
    assert connection.redact("redis+cluster://u:p@a:7000,b:7001") == "redis+cluster://***@a:7000,b:7001"


def test_the_queue_defaults_to_the_data_redis_and_a_separate_one_is_noticed() -> None:
    same = Settings.from_env({**BASE, "REDIS_URL": "redis://h:1/0"})
    assert same.queue_url is None and not same.separate_queue
    other = Settings.from_env({**BASE, "REDIS_URL": CLUSTER, "LOOP_QUEUE_URL": "redis://q:1/0"})
    assert other.queue_url == "redis://q:1/0" and other.separate_queue


def test_a_cluster_url_naming_a_plain_redis_says_it_is_not_a_cluster() -> None:
    server = spawn_redis()
    try:
        url = f"redis+cluster://127.0.0.1:{server.port}"
        with pytest.raises(ConfigError, match="REDIS_URL.*not a Redis Cluster"):
            from_settings(Settings(redis_url=url, queue_url=server.url))
    finally:
        server.stop()


def test_an_unreachable_cluster_stops_the_process_naming_redis_url() -> None:
    url = f"redis+cluster://127.0.0.1:{free_port()}"
    with pytest.raises(ConfigError, match="REDIS_URL"):
        from_settings(Settings(redis_url=url, queue_url="redis://127.0.0.1:1/0"))


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    c = Cluster().start()
    yield c
    c.stop()


@pytest.mark.cluster
def test_a_cluster_url_gives_a_cluster_client_serving_two_namespaces_on_different_masters(cluster: Cluster) -> None:
    queue = spawn_redis()
    try:
        for ns in namespaces_on_different_masters(cluster):
            loop = from_settings(Settings(redis_url=cluster.url, queue_url=queue.url, namespace=ns))
            assert isinstance(loop.raw, RedisCluster)
            issue = loop.issues.create({"title": f"in {ns}", "type": "task", "status": "todo"})
            assert loop.issues.get_live(issue["id"])["title"] == f"in {ns}"
            # RQ gets the one Redis of LOOP_QUEUE_URL, never the cluster.
            assert loop.rq.connection_pool.connection_kwargs["port"] == queue.port
    finally:
        queue.stop()


@pytest.mark.sentinel
def test_a_sentinel_url_gives_the_current_master_for_data_and_queue() -> None:
    setup = SentinelSetup().start()
    try:
        loop = from_settings(Settings(redis_url=setup.url, namespace="sent"))
        issue = loop.issues.create({"title": "via sentinel", "type": "task", "status": "todo"})
        assert loop.issues.get_live(issue["id"])["title"] == "via sentinel"
        loop.rq.set("rq-probe", b"\x80")  # undecoded: RQ pickles
        assert loop.rq.get("rq-probe") == b"\x80"
        assert loop.raw.connection_pool.get_master_address()[1] == setup.master_port  # type: ignore[union-attr]
    finally:
        setup.stop()


@pytest.mark.cluster
def test_the_start_up_check_names_every_cluster_master_that_lacks_persistence(
        cluster: Cluster, caplog: pytest.LogCaptureFixture) -> None:
    import redis

    from loop.health import check_redis_config_once

    durable = redis.Redis(port=cluster.ports[0])
    durable.config_set("appendonly", "yes")
    try:
        with caplog.at_level("WARNING", logger="loop.health"):
            check_redis_config_once(connection.connect(cluster.url), cluster.url + "#persistence-check")
    finally:
        durable.config_set("appendonly", "no")
        durable.close()
    named = {port for port in cluster.ports
             for r in caplog.records if f"127.0.0.1:{port} has no persistence" in r.getMessage()}
    assert named == set(cluster.ports[1:])  # the AOF master is not named; the two others are
