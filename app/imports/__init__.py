"""Bulk imports of enterprises, help requests and providers from CSV or XLSX files."""
