# One customer-managed key for the pipeline's data at rest: lake objects (when lake_sse_algorithm = aws:kms),
# Athena results, DynamoDB tables, the Firehose stream, Lambda environment variables, log groups and the
# alarm topic. One key keeps the key policy readable; rotation is on.
resource "aws_kms_key" "this" {
  description             = "${var.name_prefix}: sales pipeline data at rest"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name_prefix}"
  target_key_id = aws_kms_key.this.key_id
}

locals {
  # Built from names (not resource ARNs) so the key policy does not depend on the resources that use the key.
  log_group_names = {
    fanout    = "/aws/lambda/${local.names.fanout}"
    transform = "/aws/lambda/${local.names.transform}"
    firehose  = "/aws/kinesisfirehose/${local.names.delivery_stream}"
  }
  # The alarm topic and this stack's alarms, likewise from names: the topic itself is encrypted with this key.
  alarm_topic_arn   = "arn:${local.partition}:sns:${local.region}:${local.account_id}:${local.names.alarms_topic}"
  alarm_arn_pattern = "arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${var.name_prefix}-*"
}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:A key policy's Resource "*" means "this key" (the only form AWS accepts); access is granted to the account root (then scoped by IAM) and to two services with conditions.
  #checkov:skip=CKV_AWS_111:A key policy's Resource "*" means "this key" (the only form AWS accepts); write use by services is bounded by encryption-context, source-account and source-ARN conditions.
  #checkov:skip=CKV_AWS_356:A key policy's Resource "*" means "this key" (the only form AWS accepts).
  # AWS's default key-policy statement: lets IAM policies in this account grant use of the key (the roles in
  # iam.tf do so, scoped by kms:ViaService). Without it the key could become unmanageable. Resource "*" in a
  # key policy means this key; it is the only form AWS accepts there.
  statement {
    sid       = "AccountAdministersKeyThroughIam"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncryptsThePipelineLogGroups"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = [for name in values(local.log_group_names) : "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${name}"]
    }
  }

  # CloudWatch alarms publish to the encrypted SNS topic; AWS-managed SNS keys cannot be used for that (Amazon
  # SNS Developer Guide, "Managing Amazon SNS encryption keys and costs", section "Enable compatibility between
  # event sources from AWS services and encrypted topics"). Scoped to this stack: SNS encrypts with the
  # encryption context aws:sns:topicArn = the topic, and CloudWatch calls on behalf of an alarm (aws:SourceArn),
  # here only this stack's alarms (all named "<name_prefix>-...").
  statement {
    sid       = "CloudWatchAlarmsPublishToTheEncryptedTopic"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:aws:sns:topicArn"
      values   = [local.alarm_topic_arn]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [local.alarm_arn_pattern]
    }
  }
}
