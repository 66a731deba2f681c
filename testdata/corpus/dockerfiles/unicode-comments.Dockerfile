# Covers: comments in other scripts and with emoji, as blog posts have them (❌ bad, ✅ good),
# and text damaged by a wrong encoding (â€” for a dash): comments, whatever their bytes.
# Expect: lowers

# ❌ Schlecht: der Code vor den Abhängigkeiten
# ✅ Bien : les dépendances d'abord â€” puis le code
FROM python:3.11-slim
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
