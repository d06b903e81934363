"""Direct-to-store imports: the ImportService and the checks an imported object passes."""
