"""Connector profiles (credentials sealed, never returned, never logged), connector metadata
(DescribeConnector(s), ListConnectors, ListConnectorEntities, DescribeConnectorEntity,
ResetConnectorMetadataCache) and custom-connector registration."""

from __future__ import annotations

import uuid

import pytest

from support import ACCOUNT_ID, REGION, unique


def servicenow_profile(name: str, password: str, **extra) -> dict:
    request = {
        "connectorProfileName": name,
        "connectorType": "Servicenow",
        "connectionMode": "Public",
        "connectorProfileConfig": {
            "connectorProfileProperties": {
                "ServiceNow": {"instanceUrl": "https://example.service-now.com"}
            },
            "connectorProfileCredentials": {
                "ServiceNow": {"username": "integration-user", "password": password}
            },
        },
    }
    request.update(extra)
    return request


def profile_arn(name: str) -> str:
    return f"arn:aws:appflow:{REGION}:{ACCOUNT_ID}:connectorprofile/{name}"


@pytest.fixture
def secret() -> str:
    return f"Pa55-{uuid.uuid4().hex}-w0rd"


def describe_profiles(api, **params) -> list[dict]:
    profiles = []
    token = None
    while True:
        call = dict(params)
        if token:
            call["nextToken"] = token
        page = api.describe_connector_profiles(**call)
        profiles.extend(page["connectorProfileDetails"])
        token = page.get("nextToken")
        if not token:
            return profiles


def assert_secret_absent(secret: str, wire, sluice) -> None:
    for response in wire.responses:
        assert secret.encode() not in response.body, (
            f"{response.operation} returned a credential: {response.body[:300]!r}"
        )
    log = sluice.log_path.read_bytes()
    assert secret.encode() not in log, "the server log contains a credential"
    for path in sluice.data_dir.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), (
                f"{path} stores a credential in plain text"
            )


def test_connector_profile_lifecycle_never_exposes_credentials(api, wire, sluice, secret):
    name = unique("sn-profile")
    created = api.create_connector_profile(**servicenow_profile(name, secret))
    assert created["connectorProfileArn"] == profile_arn(name)

    [profile] = api.describe_connector_profiles(connectorProfileNames=[name])[
        "connectorProfileDetails"
    ]
    assert profile["connectorProfileName"] == name
    assert profile["connectorProfileArn"] == profile_arn(name)
    assert profile["connectorType"] == "Servicenow"
    assert profile["connectionMode"] == "Public"
    assert profile["connectorProfileProperties"] == {
        "ServiceNow": {"instanceUrl": "https://example.service-now.com"}
    }
    assert profile["credentialsArn"].startswith("arn:aws:"), profile["credentialsArn"]
    assert profile["lastUpdatedAt"] >= profile["createdAt"]

    new_secret = secret + "-rotated"
    updated = api.update_connector_profile(
        connectorProfileName=name,
        connectionMode="Public",
        connectorProfileConfig=servicenow_profile(name, new_secret)["connectorProfileConfig"],
    )
    assert updated["connectorProfileArn"] == profile_arn(name)
    [after] = describe_profiles(api, connectorProfileNames=[name])
    assert after["lastUpdatedAt"] >= profile["lastUpdatedAt"]
    assert after["createdAt"] == profile["createdAt"]

    # Listing every profile must not leak either secret.
    describe_profiles(api)
    assert_secret_absent(secret, wire, sluice)
    assert_secret_absent(new_secret, wire, sluice)

    assert set(api.delete_connector_profile(connectorProfileName=name)) == {"ResponseMetadata"}
    assert describe_profiles(api, connectorProfileNames=[name]) == []
    api.error("ResourceNotFoundException", "delete_connector_profile", connectorProfileName=name)


def test_duplicate_profile_conflicts(api, secret):
    name = unique("sn-dup")
    api.create_connector_profile(**servicenow_profile(name, secret))
    api.error("ConflictException", "create_connector_profile", **servicenow_profile(name, secret))


def test_profile_idempotency_token(api, secret):
    name = unique("sn-idem")
    token = str(uuid.uuid4())
    first = api.create_connector_profile(**servicenow_profile(name, secret, clientToken=token))
    again = api.create_connector_profile(**servicenow_profile(name, secret, clientToken=token))
    assert again["connectorProfileArn"] == first["connectorProfileArn"]
    other = servicenow_profile(name, secret + "x", clientToken=token)
    api.error("ConflictException", "create_connector_profile", **other)


def test_describe_connector_profiles_filters(api, secret):
    batch = uuid.uuid4().hex[:8]
    servicenow = [f"flt-{batch}-sn-{i}" for i in range(3)]
    for name in servicenow:
        api.create_connector_profile(**servicenow_profile(name, secret))
    snowflake = f"flt-{batch}-sf"
    api.create_connector_profile(
        connectorProfileName=snowflake,
        connectorType="Snowflake",
        connectionMode="Public",
        connectorProfileConfig={
            "connectorProfileProperties": {
                "Snowflake": {
                    "warehouse": "COMPUTE_WH",
                    "stage": "DB.SCHEMA.STAGE",
                    "bucketName": "sf-stage-bucket",
                }
            },
            "connectorProfileCredentials": {
                "Snowflake": {"username": "loader", "password": secret}
            },
        },
    )

    by_name = describe_profiles(api, connectorProfileNames=[servicenow[0], snowflake])
    assert sorted(p["connectorProfileName"] for p in by_name) == sorted([servicenow[0], snowflake])

    by_type = describe_profiles(api, connectorType="Snowflake")
    names = {p["connectorProfileName"] for p in by_type}
    assert snowflake in names
    assert not names & set(servicenow)
    assert all(p["connectorType"] == "Snowflake" for p in by_type)

    both = describe_profiles(api, connectorType="Servicenow", connectorProfileNames=servicenow)
    assert sorted(p["connectorProfileName"] for p in both) == sorted(servicenow)

    assert describe_profiles(api, connectorProfileNames=[f"flt-{batch}-missing"]) == []
    assert describe_profiles(api, connectorType="Zendesk", connectorProfileNames=servicenow) == []

    # Paging one at a time visits each profile exactly once.
    paged = describe_profiles(api, maxResults=1)
    paged_names = [p["connectorProfileName"] for p in paged]
    assert len(paged_names) == len(set(paged_names))
    assert set(servicenow) | {snowflake} <= set(paged_names)


def test_profile_properties_must_match_the_connector_type(api, secret):
    request = servicenow_profile(unique("sn-bad"), secret)
    request["connectorType"] = "Salesforce"
    api.error("ValidationException", "create_connector_profile", **request)


def test_profile_label_only_for_custom_connectors(api, secret):
    request = servicenow_profile(unique("sn-label"), secret, connectorLabel="SomeLabel")
    api.error("ValidationException", "create_connector_profile", **request)


def test_profile_name_pattern_is_enforced(api, secret):
    api.error(
        "ValidationException",
        "create_connector_profile",
        **servicenow_profile("has space", secret),
    )


def test_update_unknown_profile_is_not_found(api, secret):
    name = unique("sn-ghost")
    api.error(
        "ResourceNotFoundException",
        "update_connector_profile",
        connectorProfileName=name,
        connectionMode="Public",
        connectorProfileConfig=servicenow_profile(name, secret)["connectorProfileConfig"],
    )


# ---------------------------------------------------------------------------------------------
# Connector metadata.
# ---------------------------------------------------------------------------------------------


def test_describe_connectors_advertises_s3(api):
    response = api.describe_connectors()
    configurations = response["connectorConfigurations"]
    assert "S3" in configurations
    s3 = configurations["S3"]
    assert s3["canUseAsSource"] is True
    assert s3["canUseAsDestination"] is True
    assert "S3" in s3["supportedDestinationConnectors"]
    assert "OnDemand" in s3["supportedTriggerTypes"]
    # Only connectors that really exist are advertised (Sluice has none of these).
    assert not {"Marketo", "Zendesk", "Slack", "Snowflake"} & set(configurations), configurations

    only_s3 = api.describe_connectors(connectorTypes=["S3"])["connectorConfigurations"]
    assert set(only_s3) == {"S3"}


def test_describe_connector_s3(api):
    configuration = api.describe_connector(connectorType="S3")["connectorConfiguration"]
    assert configuration["canUseAsSource"] is True
    assert configuration["canUseAsDestination"] is True
    operators = set(configuration.get("supportedOperators", []))
    assert {"PROJECTION", "BETWEEN", "EQUAL_TO"} <= operators, operators


def test_list_and_describe_s3_entities(api, s3, src_bucket):
    prefix = f"entity-{uuid.uuid4().hex[:8]}"
    s3.put_object(
        Bucket=src_bucket,
        Key=f"{prefix}/part-1.csv",
        Body="order_id,customer,total,créé_le\n1,Ann,9.5,2024-01-01\n".encode(),
    )
    listing = api.list_connector_entities(connectorType="S3", entitiesPath=src_bucket)
    entity_map = listing["connectorEntityMap"]
    names = [entity["name"] for entities in entity_map.values() for entity in entities]
    assert any(prefix in name for name in names), names

    fields = api.describe_connector_entity(
        connectorType="S3", connectorEntityName=f"{src_bucket}/{prefix}"
    )["connectorEntityFields"]
    assert [f["identifier"] for f in fields] == ["order_id", "customer", "total", "créé_le"]
    for field in fields:
        details = field["supportedFieldTypeDetails"]["v1"]
        assert details["fieldType"]
        assert isinstance(details["filterOperators"], list)


def test_describe_entity_of_missing_bucket_is_an_error(api):
    api.error(
        {"ResourceNotFoundException", "ValidationException", "ConnectorServerException"},
        "describe_connector_entity",
        connectorType="S3",
        connectorEntityName=f"no-such-bucket-{uuid.uuid4().hex[:8]}/prefix",
    )


def test_reset_connector_metadata_cache(api, src_bucket):
    response = api.reset_connector_metadata_cache(connectorType="S3", entitiesPath=src_bucket)
    assert set(response) == {"ResponseMetadata"}


def test_reset_metadata_cache_needs_a_type_or_profile(api):
    api.error("ValidationException", "reset_connector_metadata_cache")


# ---------------------------------------------------------------------------------------------
# Custom-connector registration.
# ---------------------------------------------------------------------------------------------


def lambda_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"


def test_register_update_unregister_connector(api):
    label = unique("MyConnector")
    registered = api.register_connector(
        connectorLabel=label,
        description="Inventory API connector",
        connectorProvisioningType="LAMBDA",
        connectorProvisioningConfig={"lambda": {"lambdaArn": lambda_arn("inventory")}},
    )
    arn = f"arn:aws:appflow:{REGION}:{ACCOUNT_ID}:connector/{label}"
    assert registered["connectorArn"] == arn

    listed = []
    token = None
    while True:
        page = api.list_connectors(**({"nextToken": token} if token else {}))
        listed.extend(page.get("connectors", []))
        token = page.get("nextToken")
        if not token:
            break
    [detail] = [c for c in listed if c.get("connectorLabel") == label]
    assert detail["connectorProvisioningType"] == "LAMBDA"
    assert detail["connectorType"] == "CustomConnector"

    api.error(
        "ConflictException",
        "register_connector",
        connectorLabel=label,
        connectorProvisioningType="LAMBDA",
        connectorProvisioningConfig={"lambda": {"lambdaArn": lambda_arn("inventory")}},
    )

    updated = api.update_connector_registration(
        connectorLabel=label,
        description="Inventory API connector v2",
        connectorProvisioningConfig={"lambda": {"lambdaArn": lambda_arn("inventory-v2")}},
    )
    assert updated["connectorArn"] == arn

    assert set(api.unregister_connector(connectorLabel=label)) == {"ResponseMetadata"}
    api.error("ResourceNotFoundException", "unregister_connector", connectorLabel=label)
    api.error(
        "ResourceNotFoundException",
        "update_connector_registration",
        connectorLabel=label,
        description="gone",
    )


def test_register_connector_with_bad_lambda_arn(api):
    api.error(
        "ValidationException",
        "register_connector",
        connectorLabel=unique("BadArn"),
        connectorProvisioningType="LAMBDA",
        connectorProvisioningConfig={"lambda": {"lambdaArn": "not-an-arn"}},
    )


def test_registration_is_idempotent_with_token(api):
    label = unique("IdemConnector")
    token = str(uuid.uuid4())
    params = {
        "connectorLabel": label,
        "connectorProvisioningType": "LAMBDA",
        "connectorProvisioningConfig": {"lambda": {"lambdaArn": lambda_arn("idem")}},
        "clientToken": token,
    }
    first = api.register_connector(**params)
    assert api.register_connector(**params)["connectorArn"] == first["connectorArn"]
    api.unregister_connector(connectorLabel=label)
