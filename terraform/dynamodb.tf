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
  # size. The embedding dominates that size either way, but INCLUDE keeps any attribute added to the item
  # later (descriptions, image keys, vendor data) from silently raising the per-sale write cost.
  global_secondary_index {
    name               = "GSI2"
    hash_key           = "GSI2PK"
    range_key          = "GSI2SK"
    projection_type    = "INCLUDE"
    non_key_attributes = var.gsi2_projected_attributes
  }

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
