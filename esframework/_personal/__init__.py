"""Personal data: fields sealed with a key per data subject, and forgetting a subject.

- `_fields`: the `personal` field specifier (domain: no storage, no cryptography);
- `_sealing`: sealing and unsealing the encoded fields (the codec's side);
- `_forgetting`: the `PersonalDataForgotten` event that forgetting appends.

The keys themselves live in the stores (`personal_data_keys` and `forget_personal_data`).
"""
