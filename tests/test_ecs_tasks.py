"""ECS tasks run for real in the local AWS: the image in the local ECR, as the task definition says."""
from __future__ import annotations

import json
import os
import signal

import pytest

from labkit.target import Target
from tests.ecs_support import (ACCOUNT, TRUST, container, get_json, network, pid_alive, port_of, push_image, register,
                               task_of, wait_for)

CLUSTER = "lab"


@pytest.fixture
def aws(local):
    t = Target("local", prefix="ecs", region="us-east-1")
    clients = {name: t.client(name) for name in ("ecs", "ecr", "ec2", "logs", "iam", "secretsmanager", "ssm", "s3")}
    clients["ecs"].create_cluster(clusterName=CLUSTER)
    clients["net"] = network(clients["ec2"])
    clients["home"] = local.home
    return clients


def run(aws, definition_arn: str, **extra) -> str:
    params = dict(cluster=CLUSTER, taskDefinition=definition_arn, launchType="FARGATE",
                  networkConfiguration=aws["net"])
    params.update(extra)
    answer = aws["ecs"].run_task(**params)
    assert not answer["failures"], answer
    return answer["tasks"][0]["taskArn"]


def until(aws, arn: str, done, timeout: float = 60.0) -> dict:
    return wait_for(lambda: task_of(aws["ecs"], CLUSTER, arn), done, timeout)


def running(task):
    return task["lastStatus"] in ("RUNNING", "STOPPED")


def stopped(task):
    return task["lastStatus"] == "STOPPED"


def role(aws, name: str, statements: list[dict] | None = None) -> str:
    arn = aws["iam"].create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    if statements:
        aws["iam"].put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": statements}))
    return arn


LOGS_ALLOWED = [{"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": "*"}]


def test_a_task_runs_its_image_with_the_definitions_command_environment_directory_and_ports(aws):
    image, digest = push_image(aws["ecr"], aws["home"], "web")
    arn = register(aws["ecs"], "web", [container(
        image, environment=[{"name": "GREETING", "value": "from-definition"}, {"name": "PORT", "value": "8080"}],
        workingDirectory="/app")])
    task_arn = run(aws, arn)
    first = task_of(aws["ecs"], CLUSTER, task_arn)
    assert first["lastStatus"] in ("PROVISIONING", "PENDING", "RUNNING")
    task = until(aws, task_arn, running)
    assert task["lastStatus"] == "RUNNING", task.get("stoppedReason")
    assert task["containers"][0]["imageDigest"] == digest
    seen = get_json(port_of(task))
    assert seen["env"]["GREETING"] == "from-definition"  # the definition's environment
    assert seen["env"]["FROM_IMAGE"] == "yes"  # merged over the image's Env
    assert seen["cwd"].endswith("/app") and seen["argv"][0].endswith("/app/app.py")
    # The awsvpc task's address is from its subnet, in both the attachment and the container.
    ip = next(d["value"] for d in task["attachments"][0]["details"] if d["name"] == "privateIPv4Address")
    assert ip.startswith("10.20.1.")
    assert task["containers"][0]["networkInterfaces"][0]["privateIpv4Address"] == ip


def test_entry_point_and_command_replace_the_images(aws):
    image, _ = push_image(aws["ecr"], aws["home"], "web")
    arn = register(aws["ecs"], "once", [container(image, entryPoint=["/bin/sh", "-c"],
                                                  command=["echo from-entry-point; exit 3"])])
    task = until(aws, run(aws, arn), stopped)
    assert task["containers"][0]["exitCode"] == 3
    assert task["stoppedReason"] == "Essential container in task exited"
    assert task["stopCode"] == "EssentialContainerExited"


def test_stop_task_stops_the_process_and_says_why(aws):
    image, _ = push_image(aws["ecr"], aws["home"], "web")
    task_arn = run(aws, register(aws["ecs"], "web", [container(image)]))
    task = until(aws, task_arn, running)
    port = port_of(task)
    assert get_json(port)["uid"] is not None
    aws["ecs"].stop_task(cluster=CLUSTER, task=task_arn, reason="done for today")
    task = until(aws, task_arn, stopped)
    assert (task["stoppedReason"], task["stopCode"], task["desiredStatus"]) == ("done for today", "UserInitiated",
                                                                                 "STOPPED")
    assert task["containers"][0]["exitCode"] == 143  # SIGTERM: 128 + 15, as Docker reports it
    with pytest.raises(OSError):
        get_json(port, timeout=0.5)
    listed = aws["ecs"].list_tasks(cluster=CLUSTER, desiredStatus="RUNNING")["taskArns"]
    assert task_arn not in listed


def test_a_process_that_ignores_sigterm_is_killed_after_stop_timeout(aws):
    image, _ = push_image(aws["ecr"], aws["home"], "web")
    arn = register(aws["ecs"], "stubborn", [container(image, entryPoint=["/bin/sh", "-c"],
                                                      command=["trap '' TERM; while true; do sleep 0.1; done"],
                                                      stopTimeout=1)])
    task_arn = run(aws, arn)
    until(aws, task_arn, running)
    aws["ecs"].stop_task(cluster=CLUSTER, task=task_arn)
    task = until(aws, task_arn, stopped)
    assert task["containers"][0]["exitCode"] == 137  # SIGKILL


def test_a_missing_image_is_reported_as_ecs_does(aws):
    push_image(aws["ecr"], aws["home"], "web")
    missing = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/web:nope"
    task = until(aws, run(aws, register(aws["ecs"], "ghost", [container(missing)])), stopped)
    assert task["stoppedReason"].startswith("CannotPullContainerError:") and "web:nope" in task["stoppedReason"]
    assert task["stopCode"] == "TaskFailedToStart"


def test_an_image_named_by_a_digest_the_registry_does_not_hold_is_not_run(aws):
    image, digest = push_image(aws["ecr"], aws["home"], "web")
    other = image.rsplit(":", 1)[0] + "@sha256:" + "0" * 64
    task = until(aws, run(aws, register(aws["ecs"], "pinned", [container(other)])), stopped)
    assert task["stoppedReason"].startswith("CannotPullContainerError:")
    pinned = image.rsplit(":", 1)[0] + "@" + digest
    task = until(aws, run(aws, register(aws["ecs"], "pinned", [container(pinned)])), running)
    assert task["lastStatus"] == "RUNNING" and task["containers"][0]["imageDigest"] == digest


def test_the_health_check_makes_the_task_healthy_or_unhealthy(aws):
    image, _ = push_image(aws["ecr"], aws["home"], "web")
    check = {"command": ["CMD-SHELL", "curl -fs http://localhost:8080/health || exit 1"], "interval": 5,
             "timeout": 2, "retries": 1, "startPeriod": 1}
    good = run(aws, register(aws["ecs"], "web", [container(image, healthCheck=check)]))
    bad = run(aws, register(aws["ecs"], "sick", [container(image, healthCheck=check,
                                                           environment=[{"name": "HEALTH_FAILS", "value": "1"}])]))
    healthy = until(aws, good, lambda t: t.get("healthStatus") == "HEALTHY")
    assert healthy["healthStatus"] == "HEALTHY" and healthy["containers"][0]["healthStatus"] == "HEALTHY"
    sick = until(aws, bad, lambda t: t.get("healthStatus") == "UNHEALTHY")
    assert sick["healthStatus"] == "UNHEALTHY"


def test_output_goes_to_the_awslogs_group_and_stream_prefix(aws):
    image, _ = push_image(aws["ecr"], aws["home"], "web")
    aws["logs"].create_log_group(logGroupName="/ecs/web")
    execution = role(aws, "exec", LOGS_ALLOWED)
    arn = register(aws["ecs"], "web", [container(image, logConfiguration={"logDriver": "awslogs", "options": {
        "awslogs-group": "/ecs/web", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "svc"}})],
        executionRoleArn=execution)
    task_arn = run(aws, arn)
    task_id = task_arn.rsplit("/", 1)[-1]
    until(aws, task_arn, running)
    stream = f"svc/web/{task_id}"

    def messages():
        try:
            return [e["message"] for e in aws["logs"].get_log_events(logGroupName="/ecs/web",
                                                                     logStreamName=stream)["events"]]
        except aws["logs"].exceptions.ResourceNotFoundException:
            return []

    seen = wait_for(messages, lambda m: "to stderr" in m and any(x.startswith("starting on") for x in m))
    assert "to stderr" in seen and "starting on 8080" in seen


def test_awslogs_to_a_missing_group_stops_the_task_with_ecs_reason(aws):
    image, _ = push_image(aws["ecr"], aws["home"], "web")
    arn = register(aws["ecs"], "web", [container(image, logConfiguration={"logDriver": "awslogs", "options": {
        "awslogs-group": "/ecs/none", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "svc"}})],
        executionRoleArn=role(aws, "exec", LOGS_ALLOWED))
    task = until(aws, run(aws, arn), stopped)
    assert task["stoppedReason"].startswith("ResourceInitializationError: failed to validate logger args:")
    assert "ResourceNotFoundException" in task["stoppedReason"]


def test_awslogs_without_an_execution_role_is_refused_on_fargate(aws):
    image, _ = push_image(aws["ecr"], aws["home"], "web")
    aws["logs"].create_log_group(logGroupName="/ecs/web")
    with pytest.raises(aws["ecs"].exceptions.ClientException, match="execution role ARN to support log driver awslogs"):
        register(aws["ecs"], "web", [container(image, logConfiguration={"logDriver": "awslogs", "options": {
            "awslogs-group": "/ecs/web", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "svc"}})])


def test_memory_over_the_containers_limit_is_killed_as_ecs_reports_it(aws):
    image, _ = push_image(aws["ecr"], aws["home"], "web")
    task_arn = run(aws, register(aws["ecs"], "web", [container(image, memory=128)]))
    task = until(aws, task_arn, running)
    with pytest.raises(OSError):
        get_json(port_of(task), "/hog", timeout=0.5)  # 400 MB in a 128 MB container
    task = until(aws, task_arn, stopped)
    assert task["containers"][0]["exitCode"] == 137
    assert task["containers"][0]["reason"] == "OutOfMemoryError: Container killed due to memory usage"


def test_the_definitions_user_is_the_processes_user(aws):
    if os.geteuid() != 0:
        pytest.skip("switching users needs root")
    image, _ = push_image(aws["ecr"], aws["home"], "web")
    named = until(aws, run(aws, register(aws["ecs"], "who", [container(image, user="4321")])), running)
    assert get_json(port_of(named))["uid"] == 4321
    shell = register(aws["ecs"], "who", [container(image, user="4321", entryPoint=["/bin/sh", "-c"],
                                                   command=["exit $(( $(id -u) - 4321 + 7 ))"])])
    assert until(aws, run(aws, shell), stopped)["containers"][0]["exitCode"] == 7  # id -u said 4321


def test_a_container_is_never_the_machines_root_and_cannot_read_the_install_secret(aws):
    if os.geteuid() != 0:
        pytest.skip("the local AWS runs as an ordinary user: containers run as that user")
    from labkit.localaws.extensions.ecs import plan

    if not plan.nobody_can_run_python():
        pytest.skip("no Python on this machine that an unprivileged user may run")
    image, _ = push_image(aws["ecr"], aws["home"], "web")
    task = until(aws, run(aws, register(aws["ecs"], "web", [container(image)])), running)
    assert get_json(port_of(task))["uid"] == plan.NOBODY
    assert (aws["home"] / "secret").is_file()
    assert get_json(port_of(task), f"/read{aws['home'] / 'secret'}") == {"error": "PermissionError"}
    assert get_json(port_of(task), f"/read{aws['home'] / 'journal.ndjson'}") == {"error": "PermissionError"}


def test_no_task_process_outlives_reset_or_the_local_aws(local, aws):
    from labkit import localaws

    image, _ = push_image(aws["ecr"], aws["home"], "web")
    arn = register(aws["ecs"], "web", [container(image)])
    first = until(aws, run(aws, arn), running)
    assert get_json(port_of(first))["env"]  # the service answers
    pids = [_pid_on(port_of(first))]
    localaws.reset()
    assert not any(pid_alive(p) for p in wait_for(lambda: [p for p in pids if pid_alive(p)], lambda left: not left,
                                                   timeout=15))
    aws["ecs"].create_cluster(clusterName=CLUSTER)
    net = network(aws["ec2"])
    image, _ = push_image(aws["ecr"], aws["home"], "web")
    arn = register(aws["ecs"], "web", [container(image)])
    answer = aws["ecs"].run_task(cluster=CLUSTER, taskDefinition=arn, launchType="FARGATE", networkConfiguration=net)
    second = until(aws, answer["tasks"][0]["taskArn"], running)
    get_json(port_of(second))
    survivor = _pid_on(port_of(second))
    os.kill(_server_pid(local), signal.SIGKILL)  # not a clean stop: the parent-death signal must take the task with it
    left = wait_for(lambda: pid_alive(survivor), lambda alive: not alive, timeout=15)
    assert not left
    localaws.up()  # the next test finds a local AWS, as after any crash


def _pid_on(port) -> int:
    """The process listening on a loopback port (Linux /proc), or a namespaced task's (its runtimeId)."""
    if not isinstance(port, int):
        return port.pid
    hexport = f"{port:04X}"
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as fh:
            for line in fh.readlines()[1:]:
                parts = line.split()
                if parts[1].endswith(":" + hexport) and parts[3] == "0A":
                    inodes.add(parts[9])
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return int(pid)
        except OSError:
            continue
    raise AssertionError(f"nothing listens on {port}")


def _server_pid(local) -> int:
    import urllib.request

    with urllib.request.urlopen(f"{local.endpoint}/_labkit/status") as response:
        return json.loads(response.read())["pid"]


# -- credentials and secrets ---------------------------------------------------------------

def test_the_task_role_signs_the_tasks_calls_and_iam_holds_it_to_its_policies(aws):
    image, _ = push_image(aws["ecr"], aws["home"], "web")
    aws["s3"].create_bucket(Bucket="ecs-data")
    allowed = role(aws, "reader", [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}])
    denied = role(aws, "nothing", [{"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"}])
    reader = until(aws, run(aws, register(aws["ecs"], "web", [container(image)], taskRoleArn=allowed)), running)
    assert get_json(port_of(reader), "/s3") == {"buckets": ["ecs-data"]}
    blocked = until(aws, run(aws, register(aws["ecs"], "web", [container(image)], taskRoleArn=denied)), running)
    assert "AccessDenied" in get_json(port_of(blocked), "/s3")["error"]
    nobody = until(aws, run(aws, register(aws["ecs"], "web", [container(image)])), running)
    assert "Unable to locate credentials" in get_json(port_of(nobody), "/s3")["error"]


def test_the_credentials_endpoint_answers_only_the_task_holding_the_token(aws):
    import urllib.error
    import urllib.request

    image, _ = push_image(aws["ecr"], aws["home"], "web")
    allowed = role(aws, "reader", [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}])
    task = until(aws, run(aws, register(aws["ecs"], "web", [container(image)], taskRoleArn=allowed)), running)
    env = get_json(port_of(task))["env"]
    uri, token = env["AWS_CONTAINER_CREDENTIALS_FULL_URI"], env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    assert uri.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(urllib.request.Request(uri, headers={"Authorization": token})) as response:
        creds = json.loads(response.read())
    assert creds["RoleArn"] == allowed and creds["Token"] and creds["AccessKeyId"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(uri, headers={"Authorization": "guess"}))
    assert refused.value.code == 403
    aws["ecs"].stop_task(cluster=CLUSTER, task=task["taskArn"])
    until(aws, task["taskArn"], stopped)
    with pytest.raises(urllib.error.HTTPError) as gone:  # a stopped task's grant is revoked
        urllib.request.urlopen(urllib.request.Request(uri, headers={"Authorization": token}))
    assert gone.value.code == 403


def _secret_task(aws, image, execution_role, secrets):
    return run(aws, register(aws["ecs"], "web", [container(image, secrets=secrets)],
                             **({"executionRoleArn": execution_role} if execution_role else {})))


def test_secrets_are_fetched_with_the_execution_role(aws):
    image, _ = push_image(aws["ecr"], aws["home"], "web")
    secret = aws["secretsmanager"].create_secret(Name="db", SecretString=json.dumps({"password": "s3cret"}))["ARN"]
    aws["ssm"].put_parameter(Name="/app/mode", Value="blue", Type="SecureString")
    parameter = f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/app/mode"
    execution = role(aws, "exec", [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret},
                                   {"Effect": "Allow", "Action": "ssm:GetParameters", "Resource": parameter}])
    task = until(aws, _secret_task(aws, image, execution, [
        {"name": "DB_PASSWORD", "valueFrom": f"{secret}:password::"},
        {"name": "DB_SECRET", "valueFrom": secret},
        {"name": "MODE", "valueFrom": parameter}]), running)
    assert task["lastStatus"] == "RUNNING", task.get("stoppedReason")
    env = get_json(port_of(task))["env"]
    assert (env["DB_PASSWORD"], json.loads(env["DB_SECRET"]), env["MODE"]) == ("s3cret", {"password": "s3cret"}, "blue")


def test_a_secret_the_execution_role_may_not_read_stops_the_task_with_ecs_reason(aws):
    image, _ = push_image(aws["ecr"], aws["home"], "web")
    secret = aws["secretsmanager"].create_secret(Name="db", SecretString="x")["ARN"]
    aws["ssm"].put_parameter(Name="/app/mode", Value="blue", Type="String")
    execution = role(aws, "exec", LOGS_ALLOWED)
    task = until(aws, _secret_task(aws, image, execution, [{"name": "DB", "valueFrom": secret}]), stopped)
    assert task["stoppedReason"].startswith("ResourceInitializationError: unable to pull secrets or registry auth: "
                                            "execution resource retrieval failed: unable to retrieve secret from asm")
    assert "AccessDeniedException" in task["stoppedReason"] and task["stopCode"] == "TaskFailedToStart"
    task = until(aws, _secret_task(aws, image, execution, [{"name": "MODE", "valueFrom": "/app/mode"}]), stopped)
    assert "unable to retrieve secrets from ssm" in task["stoppedReason"]
    assert "AccessDeniedException" in task["stoppedReason"]
    with pytest.raises(aws["ecs"].exceptions.ClientException, match="must also specify a value for 'executionRoleArn'"):
        _secret_task(aws, image, None, [{"name": "MODE", "valueFrom": "/app/mode"}])  # AWS refuses it at registration


def test_list_tasks_names_only_the_clusters_own_tasks(aws):
    image, _ = push_image(aws["ecr"], aws["home"], "web")
    arn = register(aws["ecs"], "web", [container(image)])
    aws["ecs"].create_cluster(clusterName=f"{CLUSTER}-ec2")  # its name contains the other's
    other = aws["ecs"].run_task(cluster=f"{CLUSTER}-ec2", taskDefinition=arn, launchType="FARGATE",
                                networkConfiguration=aws["net"])["tasks"][0]["taskArn"]
    mine = run(aws, arn)
    assert aws["ecs"].list_tasks(cluster=CLUSTER)["taskArns"] == [mine]
    assert aws["ecs"].list_tasks(cluster=f"{CLUSTER}-ec2")["taskArns"] == [other]


def test_an_image_cache_whose_local_aws_is_gone_is_swept_and_a_live_ones_kept(tmp_path):
    import tempfile
    from pathlib import Path

    from labkit.localaws.extensions.ecs import tasks as ecs_tasks

    root = Path(tempfile.gettempdir())
    gone, kept = root / f"{ecs_tasks.IMAGE_DIR_PREFIX}test-gone", root / f"{ecs_tasks.IMAGE_DIR_PREFIX}test-kept"
    for folder, owner in ((gone, tmp_path / "deleted-state"), (kept, tmp_path)):
        folder.mkdir(exist_ok=True)
        (folder / ecs_tasks.OWNER_FILE).write_text(str(owner))  # a killed server's cache, and a live one's
    try:
        ecs_tasks._sweep_image_dirs()
        assert not gone.exists() and kept.exists()
    finally:
        import shutil
        shutil.rmtree(gone, ignore_errors=True)
        shutil.rmtree(kept, ignore_errors=True)
