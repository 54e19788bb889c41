# The sales table: one item per sale, keyed by the fan-out Lambda (PK/SK; GSI2 for embedding queries).
resource "aws_dynamodb_table" "sales" {
  name                        = local.names.sales_table
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "PK"
  range_key                   = "SK"
  deletion_protection_enabled = var.dynamodb_deletion_protection_enabled

  attribute {
    name = "PK"
    type = "S"
  }
  attribute {
    name = "SK"
    type = "S"
  }
  attribute {
    name = "GSI2PK"
    type = "S"
  }
  attribute {
    name = "GSI2SK"
    type = "S"
  }

  # INCLUDE rather than ALL: every write to the table is also written to GSI2 and billed for the projected
  # size. The list is pipeline.json's dynamodb.gsi2_projected_attributes (its _comment says why each one):
  # the embedding and what decoding it needs, plus what an embedding query shows. INCLUDE keeps any attribute
  # added to the item later (descriptions, image keys, vendor data) from silently raising the per-sale cost.
  global_secondary_index {
    name               = "GSI2"
    hash_key           = "GSI2PK"
    range_key          = "GSI2SK"
    projection_type    = "INCLUDE"
    non_key_attributes = local.gsi2_projected_attributes
  }

  # No on_demand_throughput cap (max_write_request_units, offered by the provider on the table and on each GSI):
  # a cap only lowers the rate at which a burst is written, never what it costs per sale, and adds a throttle
  # the fan-out would have to wait out (terraform/README.md, "DynamoDB throughput at a launch").

  ttl {
    attribute_name = "ttl"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }

  lifecycle {
    # The variables' validation blocks only see overrides; pipeline.json's own values are checked here too.
    precondition {
      condition = (
        contains(local.pipeline.dynamodb.embedding_encodings, local.dynamodb_embedding_encoding)
        && length(setsubtract(["embedding", "embeddingEncoding", "embeddingScale"], local.gsi2_projected_attributes)) == 0
      )
      error_message = "pipeline_config/pipeline.json's dynamodb values break a rule: embedding_encoding (${local.dynamodb_embedding_encoding}) must be one of embedding_encodings (${join(", ", local.pipeline.dynamodb.embedding_encodings)}), and gsi2_projected_attributes must include embedding, embeddingEncoding and embeddingScale (an embedding query needs them to decode)."
    }
  }
}

# Powertools idempotency layout: hash key `id`, TTL on `expiration` (epoch seconds).
resource "aws_dynamodb_table" "idempotency" {
  name                        = local.names.idempotency
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "id"
  deletion_protection_enabled = var.dynamodb_deletion_protection_enabled

  attribute {
    name = "id"
    type = "S"
  }

  ttl {
    attribute_name = "expiration"
    enabled        = true
  }

  # Records live 24 h; PITR is cheap here and keeps checkov's baseline uniform across tables.
  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }
}
