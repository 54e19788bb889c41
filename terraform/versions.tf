terraform {
  # 1.9 lets variable validation read locals (pipeline.json); 1.11 is what CI runs.
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.100 is the version in the offline mirror CI uses; 6.x is accepted for real deployments.
      version = ">= 5.100, < 7.0"
    }
  }
}
