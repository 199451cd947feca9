"""Policy-gradient machinery: the per-policy update (``update``), its configuration (``config``), the per-sample rows
and their log-prob sources (``rows``), advantages per algorithm (``advantages``: REINFORCE++, GRPO), the updates
without advantages (``direct``: RFT, online DPO), losses, KL estimators and the padded batches they run on."""
