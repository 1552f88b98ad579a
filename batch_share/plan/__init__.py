"""The pure middle: lines -> mutations (grouping), names -> IDs, roster -> difference."""
