# %% [markdown]
# # Lab 00: Setup
#
# In this lab you get your bearings: the local AWS you build against, the
# *target* that says where your code talks to, the grader that checks your
# work after every step, and the house rules for names, tags and cost.
#
# You will:
#
# 1. start the local AWS and save your settings (prefix and region);
# 2. confirm who you are and where you are;
# 3. store your settings as a tagged parameter, the way later labs store configuration;
# 4. put a cost guard in place, which matters the day you switch to a live account.
#
# Concepts: [Lab 00 in the course docs](../site/labs/00-setup.md).
# On a live account this lab costs nothing (a standard parameter and a budget).
# Every `# TODO` cell raises `NotImplementedError` until you write it.

# %% [markdown]
# ## 1. The local AWS and your settings
#
# The local AWS is a real server process on your machine (moto, in server
# mode). Your notebook and the grader both talk to it over HTTP, exactly as
# they would talk to AWS. `localaws.up()` starts it if it is not running yet;
# it keeps every change in a journal, so stopping it never loses your work.

# %%
import json

import checks
import labkit
from labkit import localaws

localaws.up()
print(localaws.summary())

# %% [markdown]
# Every resource you create starts with your **prefix**: 3 to 20 lowercase
# letters, digits or hyphens, starting with a letter. It keeps your resources
# apart from anybody else's in a shared account, and it is how the grader
# finds them. Save your prefix and region with `labkit.configure`; notebooks
# and the grader read the same settings.

# %%
# TODO: save your settings with labkit.configure(prefix=..., region=...); keep us-east-1 unless you have a reason.
# BEGIN SOLUTION
current = labkit.settings()  # the solution keeps whatever is set; you would write labkit.configure(prefix="ada", ...)
labkit.configure(prefix=current.prefix, region=current.region)
# END SOLUTION
t = labkit.target()
t

# %% [markdown]
# ## 2. Who and where you are
#
# `t` is your **target**. `t.client("sts")` is an ordinary boto3 client; on
# the local AWS it carries dummy credentials and the local endpoint, on a live
# account your normal credential chain. The same code works on both.

# %%
identity = t.client("sts").get_caller_identity()
print(identity["Arn"], "in", t.region)

# %% [markdown]
# Run the first checks. Each row says PASS, FAIL, ERROR (the check could not
# run; not your fault) or SKIP (the local AWS cannot show that fact; a live
# run verifies it), with a hint and a link to the docs when something is off.

# %%
checks.run("L00.01-L00.02")

# %% [markdown]
# ## 3. Your settings, stored and tagged
#
# Twelve-factor apps keep configuration out of code. In AWS, SSM Parameter
# Store is the simplest home for it. Store your settings as a **String**
# parameter named `/microservices-labs/<prefix>/config` holding
# `{"prefix": ..., "region": ...}` as JSON, and tag it with the course tags
# `t.tags("00")` so the grader and the cleanup find it.
#
# Note: `put_parameter` refuses `Tags` together with `Overwrite=True`, so
# write the value first and tag it with `add_tags_to_resource`.

# %%
ssm = t.client("ssm")
parameter_name = f"/microservices-labs/{t.prefix}/config"
# TODO: write {"prefix": t.prefix, "region": t.region} as JSON to the String parameter parameter_name, then tag it with t.tags("00").
# BEGIN SOLUTION
ssm.put_parameter(Name=parameter_name, Type="String", Overwrite=True,
                  Value=json.dumps({"prefix": t.prefix, "region": t.region}))
ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=parameter_name, Tags=t.tags("00"))
# END SOLUTION

# %%
checks.run("L00.03-L00.04")

# %% [markdown]
# ## 4. A cost guard
#
# On the local AWS nothing costs money. On a live account, a forgotten
# resource does. Pay-for-value billing is a feature only while you watch it:
# create a **monthly cost budget** named `<prefix>-course-budget` with a limit
# of at most 10 USD and a notification on ACTUAL spend at 80% of the limit,
# sent to your email address. AWS Budgets is a global service: use the
# `us-east-1` client.

# %%
budgets = t.client("budgets", "us-east-1")
budget_name = t.name("course-budget")
# TODO: create (or, on a re-run, replace) the MONTHLY COST budget budget_name: limit 10 USD, ACTUAL notification at 80 PERCENT to an EMAIL subscriber.
# BEGIN SOLUTION
budget = {
    "BudgetName": budget_name,
    "BudgetType": "COST",
    "TimeUnit": "MONTHLY",
    "BudgetLimit": {"Amount": "10", "Unit": "USD"},
}
alert = {
    "Notification": {"NotificationType": "ACTUAL", "ComparisonOperator": "GREATER_THAN",
                     "Threshold": 80, "ThresholdType": "PERCENTAGE"},
    "Subscribers": [{"SubscriptionType": "EMAIL", "Address": "learner@example.com"}],
}
try:
    budgets.create_budget(AccountId=t.account_id, Budget=budget, NotificationsWithSubscribers=[alert])
except budgets.exceptions.DuplicateRecordException:  # re-running the cell: replace the budget
    budgets.delete_budget(AccountId=t.account_id, BudgetName=budget_name)
    budgets.create_budget(AccountId=t.account_id, Budget=budget, NotificationsWithSubscribers=[alert])
# END SOLUTION

# %%
checks.run("L00.05-L00.06")

# %% [markdown]
# `L00.06` is SKIP here: the local AWS does not report a notification's
# subscribers, so only a live run can confirm your alert reaches someone.
#
# ## The whole lab
#
# One cell grades everything this lab built; run it again after any change:

# %%
checks.run("00")

# %% [markdown]
# ## Keep your work
#
# Your state survives `python -m labkit down` and `up` on its own. To keep a
# named copy (for example before an experiment), save a snapshot; to jump to
# the start of any lab, use `start`:
#
# ```bash
# python -m labkit save end-of-00
# python -m labkit restore end-of-00
# python -m labkit start 01
# ```
#
# Next: [Lab 01, the static front end](01-static-front-end.ipynb).
