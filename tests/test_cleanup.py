"""Cleanup removes this learner's course resources and nothing else."""
from __future__ import annotations

from checks import Status, grade, select
from labkit.cleanup import cleanup
from labkit.target import Target

from .states import build_lab00, build_lab01


def _quiet(_):
    pass


def test_dry_run_lists_everything_and_deletes_nothing(aws):
    build_lab00(aws)
    build_lab01(aws)
    done = cleanup(aws, dry_run=True, say=_quiet)
    assert len(done["found"]) == 5 and done["deleted"] == []
    assert grade(select("01"), aws).count(Status.FAIL) == 0


def test_cleanup_removes_the_learners_resources_only(aws):
    build_lab00(aws)
    build_lab01(aws)
    bob = Target("inprocess", prefix="bob", region="us-east-1")
    bob.client("s3").create_bucket(Bucket="bob-site-123456789012")
    bob.client("s3").put_bucket_tagging(Bucket="bob-site-123456789012", Tagging={"TagSet": bob.tags("01")})
    aws.client("s3").create_bucket(Bucket="ada-untagged")  # not course-tagged: not ours to delete

    done = cleanup(aws, say=_quiet)

    assert done["pending"] == [] and len(done["deleted"]) == 5
    buckets = {b["Name"] for b in aws.client("s3").list_buckets()["Buckets"]}
    assert buckets == {"bob-site-123456789012", "ada-untagged"}
    assert aws.client("cloudfront").list_distributions()["DistributionList"].get("Items") in (None, [])
    lab00, lab01 = grade(select("00"), aws), grade(select("01"), aws)
    assert lab01.count(Status.FAIL) == len(lab01.results)
    assert {r.check.id for r in lab00.results if r.status is Status.FAIL} == {"L00.03", "L00.04", "L00.05", "L00.06"}
    assert cleanup(aws, say=_quiet)["found"] == []  # a second run finds nothing


def _service_resources(t: Target, tagged: bool = True) -> None:
    """One of each lab 02/03 resource type, named with t's prefix."""
    import json

    tags = t.tag_map("03") if tagged else {}
    pairs = t.tags("03") if tagged else []
    ssm = t.client("ssm")
    ssm.put_parameter(Name=f"/{t.prefix}/orders/tester", Type="SecureString", Value="{}", **({"Tags": pairs} if pairs else {}))
    apigw = t.client("apigateway")
    api = apigw.create_rest_api(name=t.name("orders-api"), tags=tags)["id"]
    root = apigw.get_resources(restApiId=api)["items"][0]["id"]
    apigw.put_method(restApiId=api, resourceId=root, httpMethod="GET", authorizationType="NONE")
    apigw.put_integration(restApiId=api, resourceId=root, httpMethod="GET", type="MOCK")
    apigw.create_deployment(restApiId=api, stageName="v1")
    plan = apigw.create_usage_plan(name=t.name("orders-plan"), apiStages=[{"apiId": api, "stage": "v1"}], tags=tags)
    key = apigw.create_api_key(name=t.name("orders-key"), enabled=True, tags=tags)
    apigw.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    iam = t.client("iam")
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                      "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName=t.name("orders-fn"), AssumeRolePolicyDocument=json.dumps(trust), Tags=pairs)["Role"]["Arn"]
    iam.put_role_policy(RoleName=t.name("orders-fn"), PolicyName="data", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"}]}))
    t.client("lambda").create_function(FunctionName=t.name("orders"), Runtime="python3.13", Role=role, Handler="h.h",
                                       Code={"ZipFile": b"PK\x05\x06" + b"\0" * 18}, Tags=tags)
    t.client("logs").create_log_group(logGroupName=f"/aws/lambda/{t.name('orders')}", tags=tags)
    t.client("dynamodb").create_table(TableName=t.name("orders"), KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
                                      AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}],
                                      BillingMode="PAY_PER_REQUEST", Tags=pairs, DeletionProtectionEnabled=True)
    t.client("cognito-idp").create_user_pool(PoolName=t.name("users"), UserPoolTags=tags)


def test_cleanup_removes_api_lambda_and_data_resources_of_this_learner_only(aws):
    _service_resources(aws)
    bob = Target("inprocess", prefix="bob", region="us-east-1")
    _service_resources(bob)
    untagged = Target("inprocess", prefix="eve", region="us-east-1")
    _service_resources(untagged, tagged=False)

    done = cleanup(aws, say=_quiet)

    assert len(done["deleted"]) == 9, done["deleted"]
    assert all(" ada-" in d or "/ada" in d for d in done["deleted"])
    apis = {a["name"] for a in aws.client("apigateway").get_rest_apis()["items"]}
    assert apis == {"bob-orders-api", "eve-orders-api"}
    assert set(aws.client("dynamodb").list_tables()["TableNames"]) == {"bob-orders", "eve-orders"}
    assert {f["FunctionName"] for f in aws.client("lambda").list_functions()["Functions"]} == {"bob-orders", "eve-orders"}
    assert cleanup(aws, say=_quiet)["found"] == []


def _lab04_resources(t: Target, tagged: bool = True) -> None:
    """Lab 04's resource types that cleanup handles beyond tables and roles: scaling, DAX and the data VPC."""
    pairs = t.tags("04") if tagged else []
    table = t.name("orders-v2")
    t.client("dynamodb").create_table(TableName=table, KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                                      AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                                      ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}, Tags=pairs)
    t.client("application-autoscaling").register_scalable_target(
        ServiceNamespace="dynamodb", ResourceId=f"table/{table}", ScalableDimension="dynamodb:table:ReadCapacityUnits",
        MinCapacity=5, MaxCapacity=100)
    ec2 = t.client("ec2")
    spec = [{"ResourceType": "vpc", "Tags": pairs}] if pairs else []
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16", TagSpecifications=spec)["Vpc"]["VpcId"]
    ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.1.0/24")
    group = ec2.create_security_group(GroupName=t.name("dax"), Description="dax", VpcId=vpc)["GroupId"]
    t.client("dax").create_cluster(ClusterName=f"{t.prefix}-dax", NodeType="dax.t3.small", ReplicationFactor=1,
                                   IamRoleArn=f"arn:aws:iam::123456789012:role/{t.prefix}-orders-dax",
                                   SecurityGroupIds=[group], **({"Tags": pairs} if pairs else {}))


def test_cleanup_removes_lab04s_scaling_dax_and_network_of_this_learner_only(aws):
    _lab04_resources(aws)
    _lab04_resources(Target("inprocess", prefix="bob", region="us-east-1"))
    _lab04_resources(Target("inprocess", prefix="eve", region="us-east-1"), tagged=False)

    done = cleanup(aws, say=_quiet)

    assert done["pending"] == [], done["pending"]
    kinds = sorted(d.split(" ")[0] for d in done["deleted"])
    assert kinds == ["DAX", "VPC", "scalable", "security", "subnet", "table"], done["deleted"]
    assert all("ada" in d or d.startswith(("VPC", "subnet", "security")) for d in done["deleted"])
    targets = aws.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="dynamodb")["ScalableTargets"]
    assert {x["ResourceId"] for x in targets} == {"table/bob-orders-v2", "table/eve-orders-v2"}
    clusters = {c["ClusterName"] for c in aws.client("dax").describe_clusters()["Clusters"] if c["Status"] != "deleting"}
    assert clusters == {"bob-dax", "eve-dax"}
    assert len(aws.client("ec2").describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.40.0.0/16"]}])["Vpcs"]) == 2
    assert cleanup(aws, say=_quiet)["found"] == []


def _lab08_resources(t: Target, tagged: bool = True) -> None:
    rds = t.client("rds")
    tags = t.tags("08") if tagged else []
    ec2 = t.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.80.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.80.{n}.0/24", AvailabilityZone=f"us-east-1{z}")["Subnet"]["SubnetId"]
               for n, z in ((1, "a"), (2, "b"))]
    rds.create_db_subnet_group(DBSubnetGroupName=t.name("db"), DBSubnetGroupDescription="lab 08", SubnetIds=subnets,
                               Tags=tags)
    rds.create_db_instance(DBInstanceIdentifier=t.name("catalog"), Engine="postgres", DBInstanceClass="db.t3.micro",
                           MasterUsername="catalog", ManageMasterUserPassword=True, AllocatedStorage=20,
                           DBSubnetGroupName=t.name("db"), MultiAZ=True, DeletionProtection=True, Tags=tags)
    rds.create_db_instance_read_replica(DBInstanceIdentifier=t.name("catalog-ro"),
                                        SourceDBInstanceIdentifier=t.name("catalog"), Tags=tags)
    rds.create_db_snapshot(DBInstanceIdentifier=t.name("catalog"), DBSnapshotIdentifier=t.name("catalog-snap"),
                           Tags=tags)


def test_cleanup_removes_lab08s_db_instances_replicas_snapshots_and_subnet_groups_of_this_learner_only(aws):
    _lab08_resources(aws)
    _lab08_resources(Target("inprocess", prefix="bob", region="us-east-1"))

    done = cleanup(aws, say=_quiet)

    assert done["pending"] == [], done["pending"]
    deleted = [d for d in done["deleted"] if d.startswith("DB")]
    assert deleted == ["DB instance ada-catalog-ro", "DB instance ada-catalog", "DB snapshot ada-catalog-snap",
                       "DB subnet group ada-db"], done["deleted"]  # the replica before its source
    rds = aws.client("rds")
    assert {d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]} == {"bob-catalog",
                                                                                              "bob-catalog-ro"}
    assert [g["DBSubnetGroupName"] for g in rds.describe_db_subnet_groups()["DBSubnetGroups"]] == ["bob-db"]
    assert cleanup(aws, say=_quiet)["found"] == []
